package kube

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/e2e/testenv"
)

// `meshd manifest | kubectl apply -f -` against the real API server with
// the real kubectl, then the real meshd running with exactly the
// manifest's RBAC: its ServiceAccount's token, its ClusterRole and Role.
// The suite has no controllers: the Deployment makes no pods, so meshd
// runs as a process here with the Deployment's arguments.

// kubectlBin is the real kubectl: $MESHD_KUBECTL_BIN (make e2e-kube sets
// it), else the repository's bin/kubectl (make kubectl).
func kubectlBin(t *testing.T) string {
	if b := os.Getenv("MESHD_KUBECTL_BIN"); b != "" {
		return b
	}
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	b := filepath.Join(root, "bin", "kubectl")
	_, err = os.Stat(b)
	require.NoError(t, err, "no kubectl: run `make kubectl` (or make e2e-kube), or set MESHD_KUBECTL_BIN")
	return b
}

// manifest runs `meshd manifest args...` and returns its output.
func manifest(t *testing.T, args ...string) []byte {
	out, err := exec.Command(meshdBin, append([]string{"manifest"}, args...)...).Output()
	require.NoError(t, err, "meshd manifest %v: %s", args, stderrOf(err))
	return out
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// kubectl runs the real kubectl against the suite's API server as its
// admin, with stdin, and returns its standard output.
func kubectl(t *testing.T, stdin []byte, args ...string) string {
	cmd := exec.Command(kubectlBin(t), append([]string{"--kubeconfig", env.Kubeconfig,
		"--cache-dir", t.TempDir()}, args...)...)
	cmd.Stdin = bytes.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "kubectl %v:\n%s%s", args, stdout.String(), stderr.String())
	return stdout.String()
}

// installObjects are what `meshd manifest --namespace ns` makes, as
// kubectl names them (kind/name), in order.
func installObjects(ns, rev string) []string {
	sfx := ""
	if rev != "" {
		sfx = "-" + rev
	}
	objs := []string{"serviceaccount/meshd" + sfx,
		"clusterrole.rbac.authorization.k8s.io/meshd" + sfx + "-" + ns,
		"clusterrolebinding.rbac.authorization.k8s.io/meshd" + sfx + "-" + ns,
		"role.rbac.authorization.k8s.io/meshd" + sfx, "rolebinding.rbac.authorization.k8s.io/meshd" + sfx,
		"configmap/istio" + sfx, "deployment.apps/meshd" + sfx}
	if rev == "" { // the revision case below runs one replica: no PDB
		objs = append(objs, "poddisruptionbudget.policy/meshd"+sfx)
	}
	return append(objs, "service/istiod"+sfx,
		"mutatingwebhookconfiguration.admissionregistration.k8s.io/istio-sidecar-injector"+sfx+"-"+ns)
}

// resourceVersions returns the resourceVersion of each object of the
// manifest y, by kind/name, as the API server holds them.
func resourceVersions(t *testing.T, y []byte) map[string]string {
	var list struct {
		Items []struct {
			Kind     string            `json:"kind"`
			Metadata metav1.ObjectMeta `json:"metadata"`
		} `json:"items"`
	}
	require.NoError(t, json.Unmarshal([]byte(kubectl(t, y, "get", "-f", "-", "-o", "json")), &list))
	out := map[string]string{}
	for _, o := range list.Items {
		out[o.Kind+"/"+o.Metadata.Name] = o.Metadata.ResourceVersion
	}
	require.NotEmpty(t, out)
	return out
}

// deleteClusterObjects removes the install's cluster-scoped objects, which
// outlive the test's namespace.
func (c *cluster) deleteClusterObjects(ns, rev string) {
	sfx := ""
	if rev != "" {
		sfx = "-" + rev
	}
	c.t.Cleanup(func() {
		ctx := c.ctx
		_ = c.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(ctx,
			"istio-sidecar-injector"+sfx+"-"+ns, metav1.DeleteOptions{})
		_ = c.kube.RbacV1().ClusterRoleBindings().Delete(ctx, "meshd"+sfx+"-"+ns, metav1.DeleteOptions{})
		_ = c.kube.RbacV1().ClusterRoles().Delete(ctx, "meshd"+sfx+"-"+ns, metav1.DeleteOptions{})
	})
}

// TestInstallManifestApplies: the manifest is accepted by a server-side dry
// run, then applied for real, and a second apply changes nothing.
func TestInstallManifestApplies(t *testing.T) {
	c := newCluster(t)
	const ns, revNS = "install-apply", "install-apply-rev"
	c.namespace(ns, nil)
	c.namespace(revNS, nil)
	c.deleteClusterObjects(ns, "")
	c.deleteClusterObjects(revNS, "canary")

	for _, tc := range []struct {
		ns, rev string
		args    []string
	}{
		{ns, "", []string{"--namespace", ns}},
		{revNS, "canary", []string{"--namespace", revNS, "--revision", "canary", "--replicas", "1",
			"--webhook-failure-policy", "Ignore", "--limits-cpu", "2"}},
	} {
		y := manifest(t, tc.args...)
		out := kubectl(t, y, "apply", "--dry-run=server", "-f", "-")
		for _, o := range installObjects(tc.ns, tc.rev) {
			assert.Contains(t, out, o+" created (server dry run)\n")
		}
		_, err := c.kube.AppsV1().Deployments(tc.ns).Get(c.ctx, "meshd", metav1.GetOptions{})
		assert.True(t, apierrors.IsNotFound(err), "a dry run creates nothing: %v", err)

		out = kubectl(t, y, "apply", "-f", "-")
		for _, o := range installObjects(tc.ns, tc.rev) {
			assert.Contains(t, out, o+" created\n")
		}
		// Applying it again changes nothing. (kubectl says "configured" for
		// a PodDisruptionBudget and a MutatingWebhookConfiguration all the
		// same: their selectors' patch strategy is replace, so its patch is
		// never empty; the API server finds nothing to change.)
		before := resourceVersions(t, y)
		kubectl(t, y, "apply", "-f", "-")
		assert.Equal(t, before, resourceVersions(t, y), "applying it again changes nothing")
	}

	// What the API server holds, read back with the typed client.
	dep, err := c.kube.AppsV1().Deployments(ns).Get(c.ctx, "meshd", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(2), *dep.Spec.Replicas)
	assert.Equal(t, "meshd", dep.Spec.Template.Spec.ServiceAccountName)
	svc, err := c.kube.CoreV1().Services(ns).Get(c.ctx, "istiod", metav1.GetOptions{})
	require.NoError(t, err)
	assert.NotEmpty(t, svc.Spec.ClusterIP, "a ClusterIP is allocated")
	pdb, err := c.kube.PolicyV1().PodDisruptionBudgets(ns).Get(c.ctx, "meshd", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, 1, pdb.Spec.MinAvailable.IntValue())
	mwc, err := c.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(c.ctx,
		"istio-sidecar-injector-"+ns, metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, mwc.Webhooks, 4)
	for _, w := range mwc.Webhooks {
		assert.Equal(t, "istiod", w.ClientConfig.Service.Name)
		assert.Equal(t, ns, w.ClientConfig.Service.Namespace)
		assert.Equal(t, int32(443), *w.ClientConfig.Service.Port)
		assert.Equal(t, admissionregistrationv1.Fail, *w.FailurePolicy)
	}
	rev, err := c.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(c.ctx,
		"istio-sidecar-injector-canary-"+revNS, metav1.GetOptions{})
	require.NoError(t, err)
	require.Len(t, rev.Webhooks, 2)
	assert.Equal(t, "istiod-canary", rev.Webhooks[0].ClientConfig.Service.Name)
	assert.Equal(t, admissionregistrationv1.Ignore, *rev.Webhooks[0].FailurePolicy)
	cm, err := c.kube.CoreV1().ConfigMaps(revNS).Get(c.ctx, "istio-canary", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Contains(t, cm.Data["mesh"], "discoveryAddress: istiod-canary."+revNS+".svc:15012")
}

// TestInstallRBACSuffices: the real meshd, authenticated as the manifest's
// ServiceAccount and so holding exactly its ClusterRole and Role, with the
// Deployment's arguments and the secure port on, syncs, mints the mesh CA,
// publishes the root, reviews a workload's token, serves it config and a
// certificate, records a Warning Event, serves the injection webhook and
// patches its caBundle, and logs no "forbidden". The
// control: the same meshd under the role less one rule does log it.
func TestInstallRBACSuffices(t *testing.T) {
	c := newCluster(t)
	const ns, app = "install-rbac", "install-rbac-app"
	c.namespace(ns, nil)
	c.deleteClusterObjects(ns, "")
	kubectl(t, manifest(t, "--namespace", ns), "apply", "-f", "-")

	dep, err := c.kube.AppsV1().Deployments(ns).Get(c.ctx, "meshd", metav1.GetOptions{})
	require.NoError(t, err)
	pod := dep.Spec.Template.Spec
	require.Equal(t, "serve", pod.Containers[0].Args[0])
	var args []string // the Deployment's, but the harness picks the listen addresses
	for _, a := range pod.Containers[0].Args[1:] {
		if !strings.HasPrefix(a, "--admin-address") && !strings.HasPrefix(a, "--xds-address") {
			args = append(args, a)
		}
	}
	podEnv := []string{}
	for _, e := range pod.Containers[0].Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			podEnv = append(podEnv, e.Name+"="+ns)
		case e.ValueFrom == nil:
			podEnv = append(podEnv, e.Name+"="+e.Value)
		default:
			t.Fatalf("env %s: the test does not know how to set it", e.Name)
		}
	}

	// The workload: a Service with an endpoint, a service account, and a
	// VirtualService meshd rejects (a Warning Event).
	c.namespace(app, nil)
	c.service(app, "echo", 7070)
	b := harness.StartBackend(t, "echo", backendIP(71, 1), 7070)
	c.createSlice(slice(app, "echo-1", "echo", 7070, ep{b: b, ready: true}))
	c.serviceAccount(app, "client")
	bad := weighted(app, "bad", "echo."+app+".svc.cluster.local", 100, 0)
	bad.Spec.Http[0].Match = []*networking.HTTPMatchRequest{{
		Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: "/api/(["}}}}
	_, err = c.istio.NetworkingV1().VirtualServices(app).Create(c.ctx, bad, metav1.CreateOptions{})
	require.NoError(t, err)

	c.waitAuthorized(ns, pod.ServiceAccountName, authzv1.ResourceAttributes{Verb: "create",
		Group: "authentication.k8s.io", Resource: "tokenreviews"})
	c.waitAuthorized(ns, pod.ServiceAccountName, authzv1.ResourceAttributes{Verb: "get", Namespace: ns,
		Resource: "secrets", Name: "istio-ca-secret"})
	secureAddr := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	m := harness.StartMeshd(t, meshdBin, 60*time.Second, append([]string{
		"--kubeconfig", c.saKubeconfig(ns, pod.ServiceAccountName), "--secure-xds-address", secureAddr,
		"--injector-address", "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))}, args...), podEnv...)

	root := c.rootCert(app) // published by meshd: the ConfigMap rules
	secret, err := c.kube.CoreV1().Secrets(ns).Get(c.ctx, "istio-ca-secret", metav1.GetOptions{})
	require.NoError(t, err, "meshd created the self-signed root: the Role's Secret rules")
	assert.Equal(t, corev1.SecretType("istio.io/ca-root"), secret.Type)

	conn := harness.DialSecure(t, secureAddr, "istiod."+ns+".svc", root, c.token(app, "client"))
	resp, err := harness.FetchFirst(conn, harness.SecureNode(t, nodeID("client", app), app, nil),
		resourcev3.ClusterType, 20*time.Second)
	require.NoError(t, err, "TokenReview, then config")
	var names []string
	for _, r := range resp.GetResources() {
		var cl clusterv3.Cluster
		require.NoError(t, r.UnmarshalTo(&cl))
		names = append(names, cl.GetName())
	}
	assert.Contains(t, names, "outbound|7070||echo."+app+".svc.cluster.local", "the workload's Service reaches the client")
	chain, err := harness.RequestCert(conn, "spiffe://cluster.local/ns/"+app+"/sa/client", time.Hour)
	require.NoError(t, err)
	harness.VerifyChain(t, chain, root)

	require.Eventually(t, func() bool {
		evs, err := c.kube.CoreV1().Events(app).List(c.ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", "bad").String()})
		return err == nil && slices.ContainsFunc(evs.Items, func(e corev1.Event) bool { return e.Reason == "MeshdRejected" })
	}, 20*time.Second, 100*time.Millisecond, "meshd records a Warning Event: the events rule")

	require.Eventually(t, func() bool {
		mwc, err := c.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(c.ctx,
			"istio-sidecar-injector-"+ns, metav1.GetOptions{})
		return err == nil && !slices.ContainsFunc(mwc.Webhooks, func(w admissionregistrationv1.MutatingWebhook) bool {
			return string(w.ClientConfig.CABundle) != string(root)
		})
	}, 20*time.Second, 100*time.Millisecond, "meshd patches the root into its webhooks' caBundle")

	logs := m.Logs()
	assert.Contains(t, logs, "kubernetes informers synced")
	assert.Contains(t, logs, "mesh CA ready")
	assert.Contains(t, logs, "sidecar injection webhook serving")
	assert.NotContains(t, strings.ToLower(logs), "forbidden", "meshd needs a permission the manifest lacks")

	t.Run("control: one rule less is forbidden, and logged", func(t *testing.T) {
		cr, err := c.kube.RbacV1().ClusterRoles().Get(c.ctx, "meshd-"+ns, metav1.GetOptions{})
		require.NoError(t, err)
		less := slices.DeleteFunc(slices.Clone(cr.Rules), func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.ResourceNames, "istio-ca-root-cert")
		})
		require.Len(t, less, len(cr.Rules)-1)
		const sa = "meshd-control"
		c.serviceAccount(ns, sa)
		name := "meshd-control-" + ns
		_, err = c.kube.RbacV1().ClusterRoles().Create(c.ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: less}, metav1.CreateOptions{})
		require.NoError(t, err)
		subjects := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}}
		_, err = c.kube.RbacV1().ClusterRoleBindings().Create(c.ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err)
		t.Cleanup(func() {
			_ = c.kube.RbacV1().ClusterRoleBindings().Delete(c.ctx, name, metav1.DeleteOptions{})
			_ = c.kube.RbacV1().ClusterRoles().Delete(c.ctx, name, metav1.DeleteOptions{})
		})
		_, err = c.kube.RbacV1().RoleBindings(ns).Create(c.ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sa}, Subjects: subjects,
			RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "meshd"}}, metav1.CreateOptions{})
		require.NoError(t, err)
		c.waitAuthorized(ns, sa, authzv1.ResourceAttributes{Verb: "create",
			Group: "authentication.k8s.io", Resource: "tokenreviews"})
		c.waitAuthorized(ns, sa, authzv1.ResourceAttributes{Verb: "get", Namespace: ns,
			Resource: "secrets", Name: "istio-ca-secret"})
		ctl := harness.StartMeshd(t, meshdBin, 60*time.Second, append([]string{
			"--kubeconfig", c.saKubeconfig(ns, sa),
			"--secure-xds-address", "127.0.0.1:" + strconv.Itoa(harness.FreePort(t)),
			"--injector-address", "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))}, args...), podEnv...)
		require.Eventually(t, func() bool { return strings.Contains(strings.ToLower(ctl.Logs()), "forbidden") },
			20*time.Second, 100*time.Millisecond, "without the istio-ca-root-cert rule meshd is refused; logs:\n%s", ctl.Logs())
	})
}

// waitAuthorized waits until the API server's authorizer, whose RBAC
// cache trails writes a little, allows ServiceAccount ns/sa attrs.
func (c *cluster) waitAuthorized(ns, sa string, attrs authzv1.ResourceAttributes) {
	require.Eventually(c.t, func() bool {
		r, err := c.kube.AuthorizationV1().SubjectAccessReviews().Create(c.ctx, &authzv1.SubjectAccessReview{
			Spec: authzv1.SubjectAccessReviewSpec{User: "system:serviceaccount:" + ns + ":" + sa,
				Groups:             []string{"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"},
				ResourceAttributes: &attrs}}, metav1.CreateOptions{})
		return err == nil && r.Status.Allowed
	}, 10*time.Second, 50*time.Millisecond, "RBAC must allow %s/%s %+v", ns, sa, attrs)
}

// saKubeconfig writes a kubeconfig for the suite's API server that
// authenticates as ServiceAccount ns/sa, with a TokenRequest token, and
// returns its path.
func (c *cluster) saKubeconfig(ns, sa string) string {
	exp := int64(3600)
	tr, err := c.kube.CoreV1().ServiceAccounts(ns).CreateToken(c.ctx, sa,
		&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	require.NoError(c.t, err)
	ca, err := json.Marshal(env.CAPEM) // base64
	require.NoError(c.t, err)
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster: {server: %s, certificate-authority-data: %s}
users:
- name: %s
  user: {token: %s}
contexts:
- name: testenv
  context: {cluster: testenv, user: %s}
current-context: testenv
`, env.URL, ca, sa, tr.Status.Token, sa)
	path := filepath.Join(c.t.TempDir(), "kubeconfig")
	require.NoError(c.t, os.WriteFile(path, []byte(cfg), 0o600))
	return path
}
