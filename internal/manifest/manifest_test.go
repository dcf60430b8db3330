package manifest

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/meshd/meshd/discovery/meshcfg"
	"github.com/meshd/meshd/internal/ca"
	"github.com/meshd/meshd/internal/config"
)

func noFiles(string) ([]byte, error) { return nil, os.ErrNotExist }

// decode parses a rendered stream back into typed objects, strictly: a
// field the API does not have is an error.
func decode(t *testing.T, out []byte) []runtime.Object {
	t.Helper()
	var objs []runtime.Object
	for _, doc := range strings.Split(string(out), "\n---\n")[1:] {
		var tm metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal([]byte(doc), &tm))
		obj, err := scheme.Scheme.New(tm.GroupVersionKind())
		require.NoError(t, err, doc)
		require.NoError(t, yaml.UnmarshalStrict([]byte(doc), obj), doc)
		objs = append(objs, obj)
	}
	return objs
}

func render(t *testing.T, args ...string) []runtime.Object {
	t.Helper()
	o, err := Parse(args, noFiles)
	require.NoError(t, err)
	out, err := o.Render()
	require.NoError(t, err)
	return decode(t, out)
}

func find[T runtime.Object](t *testing.T, objs []runtime.Object) T {
	t.Helper()
	for _, o := range objs {
		if v, ok := o.(T); ok {
			return v
		}
	}
	var zero T
	t.Fatalf("no %T in the manifest", zero)
	return zero
}

func kinds(objs []runtime.Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetObjectKind().GroupVersionKind().Kind)
	}
	return out
}

func TestParse(t *testing.T) {
	o, err := Parse(nil, noFiles)
	require.NoError(t, err)
	assert.Equal(t, Defaults(), o)
	assert.Empty(t, o.Flags())

	o, err = Parse([]string{"--namespace", "mesh", "--revision=canary", "--replicas=3", "--image=reg/meshd:v1",
		"--proxy-image=reg/proxyv2:1.29", "--requests-cpu=1", "--requests-memory=", "--limits-cpu=2", "--limits-memory=1Gi",
		"--webhook-failure-policy=Ignore", "--trust-domain=bank.example", "--mesh-config=m.yaml"},
		func(name string) ([]byte, error) {
			require.Equal(t, "m.yaml", name)
			return []byte("rootNamespace: mesh\ntrustDomain: bank.example\n"), nil
		})
	require.NoError(t, err)
	assert.Equal(t, Options{Namespace: "mesh", Revision: "canary", Replicas: 3, Image: "reg/meshd:v1",
		ProxyImage: "reg/proxyv2:1.29", RequestsCPU: "1", LimitsCPU: "2", LimitsMemory: "1Gi", WebhookFailurePolicy: "Ignore",
		TrustDomain: "bank.example", MeshConfig: "rootNamespace: mesh\ntrustDomain: bank.example\n"}, o)
	assert.Equal(t, []string{"--namespace=mesh", "--revision=canary", "--replicas=3", "--image=reg/meshd:v1",
		"--proxy-image=reg/proxyv2:1.29", "--requests-cpu=1", "--requests-memory=", "--limits-cpu=2", "--limits-memory=1Gi",
		"--webhook-failure-policy=Ignore", "--trust-domain=bank.example", "--mesh-config=FILE"}, o.Flags())

	_, err = Parse([]string{"--help"}, noFiles)
	assert.ErrorIs(t, err, ErrHelp)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--replicas=0"}, "--replicas 0: want at least 1"},
		{[]string{"--replicas=-2"}, "--replicas -2: want at least 1"},
		{[]string{"--replicas=two"}, `invalid value "two" for flag --replicas`},
		{[]string{"--namespace=Istio_System"}, `--namespace "Istio_System"`},
		{[]string{"--namespace="}, `--namespace ""`},
		{[]string{"--revision=1.29.0"}, `--revision "1.29.0"`},
		{[]string{"--revision=" + strings.Repeat("r", 50)}, "too long"},
		{[]string{"--image="}, `--image "": want an image reference`},
		{[]string{"--requests-cpu=lots"}, `--requests-cpu "lots": want a Kubernetes quantity`},
		{[]string{"--limits-memory=2GB"}, `--limits-memory "2GB"`},
		{[]string{"--webhook-failure-policy=fail"}, `--webhook-failure-policy "fail": want Fail or Ignore`},
		{[]string{"--mesh-config=absent.yaml"}, "--mesh-config: file does not exist"},
		{[]string{"--nope"}, "flag provided but not defined: --nope (see meshd manifest --help)"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		_, err := Parse(tc.args, noFiles)
		require.Error(t, err, tc.args)
		assert.Contains(t, err.Error(), tc.want, tc.args)
		assert.False(t, errors.Is(err, ErrHelp))
	}
	_, err := Parse([]string{"--mesh-config=m"}, func(string) ([]byte, error) { return []byte("rootNamespace: [x"), nil })
	assert.ErrorContains(t, err, "--mesh-config: mesh config is not valid YAML")
	_, err = Parse([]string{"--mesh-config=m"}, func(string) ([]byte, error) { return []byte("trustDomain: bank.example"), nil })
	assert.ErrorContains(t, err, `--mesh-config has trustDomain "bank.example" but --trust-domain is "cluster.local": give --trust-domain bank.example`)
	_, err = Parse([]string{"--trust-domain="}, noFiles)
	assert.ErrorContains(t, err, `--trust-domain "": want a trust domain`)
}

func TestDefaultInstall(t *testing.T) {
	objs := render(t)
	assert.Equal(t, []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
		"ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "MutatingWebhookConfiguration"}, kinds(objs))
	for _, obj := range objs {
		m, err := meta.Accessor(obj)
		require.NoError(t, err)
		switch obj.(type) {
		case *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding, *admissionregistrationv1.MutatingWebhookConfiguration:
			assert.Empty(t, m.GetNamespace(), m.GetName())
		default:
			assert.Equal(t, "istio-system", m.GetNamespace(), m.GetName())
		}
		assert.Equal(t, "default", m.GetLabels()["istio.io/rev"], m.GetName())
	}
	assert.Equal(t, "meshd-istio-system", find[*rbacv1.ClusterRole](t, objs).Name)
	crb := find[*rbacv1.ClusterRoleBinding](t, objs)
	assert.Equal(t, "meshd-istio-system", crb.RoleRef.Name)
	assert.Equal(t, []rbacv1.Subject{{Kind: "ServiceAccount", Name: "meshd", Namespace: "istio-system"}}, crb.Subjects)
	rb := find[*rbacv1.RoleBinding](t, objs)
	assert.Equal(t, "meshd", rb.RoleRef.Name)
	assert.Equal(t, crb.Subjects, rb.Subjects)

	dep := find[*appsv1.Deployment](t, objs)
	assert.Equal(t, "meshd", dep.Name)
	assert.Equal(t, int32(2), *dep.Spec.Replicas)
	pod := dep.Spec.Template
	assert.Equal(t, "meshd", pod.Spec.ServiceAccountName)
	assert.Subset(t, pod.Labels, map[string]string{"app": "istiod", "istio": "pilot", "app.kubernetes.io/name": "meshd"})
	assert.True(t, selects(dep.Spec.Selector, pod.Labels))
	aff := pod.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	require.Len(t, aff, 1)
	assert.Equal(t, "kubernetes.io/hostname", aff[0].PodAffinityTerm.TopologyKey)
	assert.True(t, selects(aff[0].PodAffinityTerm.LabelSelector, pod.Labels))
	c := pod.Spec.Containers[0]
	assert.Equal(t, DefaultImage, c.Image)
	assert.Equal(t, []string{"/usr/local/bin/meshd"}, c.Command)
	assert.Equal(t, "/ready", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, int32(15014), c.ReadinessProbe.HTTPGet.Port.IntVal)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	assert.Equal(t, map[string]int32{"grpc-xds": 15010, "tls-xds": 15012, "http-monitoring": 15014, "https-webhooks": 15017}, ports)
	assert.Equal(t, "metadata.namespace", c.Env[0].ValueFrom.FieldRef.FieldPath)
	assert.Equal(t, "500m", c.Resources.Requests.Cpu().String())
	assert.Equal(t, "2Gi", c.Resources.Limits.Memory().String())
	assert.NotContains(t, c.Resources.Limits, corev1.ResourceCPU)

	pdb := find[*policyv1.PodDisruptionBudget](t, objs)
	assert.Equal(t, int32(1), pdb.Spec.MinAvailable.IntVal)
	assert.True(t, selects(pdb.Spec.Selector, pod.Labels))

	svc := find[*corev1.Service](t, objs)
	assert.Equal(t, "istiod", svc.Name)
	assert.Equal(t, map[string]string{"app": "istiod", "istio": "pilot"}, svc.Spec.Selector)
	assert.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod.Labels)))
	svcPorts := map[string][2]int32{}
	for _, p := range svc.Spec.Ports {
		svcPorts[p.Name] = [2]int32{p.Port, p.TargetPort.IntVal}
	}
	assert.Equal(t, map[string][2]int32{"grpc-xds": {15010, 15010}, "https-dns": {15012, 15012},
		"http-monitoring": {15014, 15014}, "https-webhook": {443, 15017}}, svcPorts)

	mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs)
	assert.Equal(t, "istio-sidecar-injector", mwc.Name)
	var names []string
	for _, w := range mwc.Webhooks {
		names = append(names, w.Name)
		s := w.ClientConfig.Service
		require.NotNil(t, s)
		assert.Equal(t, [4]string{"istiod", "istio-system", "/inject", "443"},
			[4]string{s.Name, s.Namespace, *s.Path, fmt.Sprint(*s.Port)})
		assert.Empty(t, w.ClientConfig.CABundle)
		assert.Equal(t, admissionregistrationv1.Fail, *w.FailurePolicy)
		assert.Equal(t, admissionregistrationv1.SideEffectClassNone, *w.SideEffects)
		assert.Equal(t, admissionregistrationv1.NeverReinvocationPolicy, *w.ReinvocationPolicy)
		assert.Equal(t, []string{"v1"}, w.AdmissionReviewVersions)
		assert.Equal(t, []admissionregistrationv1.OperationType{"CREATE"}, w.Rules[0].Operations)
		assert.Equal(t, []string{"pods"}, w.Rules[0].Resources)
	}
	assert.Equal(t, []string{"rev.namespace.sidecar-injector.istio.io", "rev.object.sidecar-injector.istio.io",
		"namespace.sidecar-injector.istio.io", "object.sidecar-injector.istio.io"}, names)
	// istio-injection=enabled namespaces; pods that opt out are skipped.
	ns := mwc.Webhooks[2]
	assert.True(t, selects(ns.NamespaceSelector, map[string]string{"istio-injection": "enabled"}))
	assert.False(t, selects(ns.NamespaceSelector, map[string]string{}))
	assert.True(t, selects(ns.ObjectSelector, map[string]string{}))
	assert.False(t, selects(ns.ObjectSelector, map[string]string{"sidecar.istio.io/inject": "false"}))

	cm := find[*corev1.ConfigMap](t, objs)
	assert.Equal(t, "istio", cm.Name)
	mesh, warning, err := meshcfg.Parse([]byte(cm.Data["mesh"]))
	require.NoError(t, err)
	assert.Empty(t, warning)
	assert.Equal(t, "istio-system", mesh.GetRootNamespace())
	assert.Equal(t, "cluster.local", mesh.GetTrustDomain())
	assert.Equal(t, "istiod.istio-system.svc:15012", mesh.GetDefaultConfig().GetDiscoveryAddress())
}

func TestRevision(t *testing.T) {
	objs := render(t, "--revision=canary", "--namespace=mesh", "--replicas=1")
	assert.NotContains(t, kinds(objs), "PodDisruptionBudget", "one replica: a PDB would block drains")
	want := map[string]string{"ServiceAccount": "meshd-canary", "ClusterRole": "meshd-canary-mesh",
		"ClusterRoleBinding": "meshd-canary-mesh", "Role": "meshd-canary", "RoleBinding": "meshd-canary",
		"ConfigMap": "istio-canary", "Deployment": "meshd-canary", "Service": "istiod-canary",
		"MutatingWebhookConfiguration": "istio-sidecar-injector-canary-mesh"}
	for _, obj := range objs {
		m, err := meta.Accessor(obj)
		require.NoError(t, err)
		assert.Equal(t, want[obj.GetObjectKind().GroupVersionKind().Kind], m.GetName())
		assert.Equal(t, "canary", m.GetLabels()["istio.io/rev"])
	}
	dep := find[*appsv1.Deployment](t, objs)
	pod := dep.Spec.Template.Labels
	assert.Equal(t, "istiod", pod["istio"], "istiod's label on a revision's pods")
	svc := find[*corev1.Service](t, objs)
	assert.Equal(t, map[string]string{"app": "istiod", "istio.io/rev": "canary"}, svc.Spec.Selector)
	assert.True(t, labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(pod)))
	assert.False(t, labels.SelectorFromSet(map[string]string{"app": "istiod", "istio": "pilot"}).Matches(labels.Set(pod)),
		"the default istiod Service must not select a revision's pods")
	mwc := find[*admissionregistrationv1.MutatingWebhookConfiguration](t, objs)
	require.Len(t, mwc.Webhooks, 2)
	for _, w := range mwc.Webhooks {
		assert.Equal(t, "istiod-canary", w.ClientConfig.Service.Name)
		assert.Equal(t, "mesh", w.ClientConfig.Service.Namespace)
	}
	assert.True(t, selects(mwc.Webhooks[0].NamespaceSelector, map[string]string{"istio.io/rev": "canary"}))
	assert.False(t, selects(mwc.Webhooks[0].NamespaceSelector, map[string]string{"istio.io/rev": "default"}))
	assert.True(t, selects(mwc.Webhooks[1].ObjectSelector, map[string]string{"istio.io/rev": "canary"}))
	cr := find[*rbacv1.ClusterRole](t, objs)
	assert.Contains(t, cr.Rules, rbacv1.PolicyRule{APIGroups: []string{"admissionregistration.k8s.io"},
		Resources: []string{"mutatingwebhookconfigurations"}, ResourceNames: []string{mwc.Name}, Verbs: []string{"get", "list", "watch", "patch"}})
	mesh, _, err := meshcfg.Parse([]byte(find[*corev1.ConfigMap](t, objs).Data["mesh"]))
	require.NoError(t, err)
	assert.Equal(t, "istiod-canary.mesh.svc:15012", mesh.GetDefaultConfig().GetDiscoveryAddress())
}

// TestArgs checks the Deployment's arguments against meshd serve's own
// parser, in the pod's environment: the secure port and XDS_AUTH are on
// (so the roles must allow TokenReviews, the CA Secrets and the credential
// Secrets), the namespace and ConfigMap are the manifest's.
func TestArgs(t *testing.T) {
	for _, args := range [][]string{nil, {"--revision=canary", "--namespace=mesh", "--image=reg/meshd:v2",
		"--proxy-image=reg/proxyv2:1.29", "--trust-domain=bank.example"}} {
		o, err := Parse(args, noFiles)
		require.NoError(t, err)
		a := o.Args()
		require.Equal(t, "serve", a[0])
		s, err := config.Parse(a[1:], func(k string) string {
			if k == "POD_NAMESPACE" {
				return o.Namespace
			}
			return ""
		})
		require.NoError(t, err)
		assert.Equal(t, o.Namespace, s.IstioNamespace)
		assert.Equal(t, o.MeshConfigMapName(), s.MeshConfigMap)
		assert.Equal(t, ":15014", s.AdminAddress)
		assert.Equal(t, ":15010", s.XDSAddress)
		assert.Equal(t, ":15012", s.Security.SecureXDSAddress)
		assert.True(t, s.Security.XDSAuth)
		assert.Empty(t, s.ConfigDir)
		assert.Empty(t, s.Kubeconfig, "in-cluster config")
		assert.Equal(t, o.Revision, s.Inject.Revision)
		assert.Equal(t, o.TrustDomain, s.Security.TrustDomain)
		assert.Equal(t, o.WebhookConfigName(), s.Inject.WebhookConfig(s.IstioNamespace),
			"the caBundle patcher patches the manifest's webhook configuration, which the role names")
		assert.True(t, s.Inject.InjectorEnabled())
		assert.Equal(t, o.Image, s.Inject.MeshdImage)
		if o.ProxyImage != "" {
			assert.Equal(t, o.ProxyImage, s.Inject.ProxyImage)
		}
		assert.Equal(t, o.DiscoveryAddress(), s.Inject.Discovery(s.IstioNamespace, ""))
		assert.Contains(t, ca.IstiodDNSNames(s.IstioNamespace, "", s.Security.CustomHosts()...),
			o.ServiceName()+"."+o.Namespace+".svc", "the secure port's certificate is for the Service")
	}
}

func TestMeshConfigFlag(t *testing.T) {
	o, err := Parse([]string{"--mesh-config=mine"}, func(string) ([]byte, error) { return []byte("accessLogFile: /dev/stdout\n"), nil })
	require.NoError(t, err)
	out, err := o.Render()
	require.NoError(t, err)
	cm := find[*corev1.ConfigMap](t, decode(t, out))
	assert.Equal(t, "accessLogFile: /dev/stdout\n", cm.Data["mesh"])
	assert.Contains(t, string(out), "Generated by `meshd manifest --mesh-config=FILE`")
}

// TestDeployManifest keeps hack/deploy/meshd.yaml, the default install, in
// step with the generator.
func TestDeployManifest(t *testing.T) {
	want, err := Defaults().Render()
	require.NoError(t, err)
	got, err := os.ReadFile("../../hack/deploy/meshd.yaml")
	require.NoError(t, err)
	if string(got) != string(want) {
		t.Fatal("hack/deploy/meshd.yaml is not `meshd manifest`'s output; regenerate it with\n" +
			"  go run ./cmd/meshd manifest > hack/deploy/meshd.yaml")
	}
}

func selects(s *metav1.LabelSelector, l map[string]string) bool {
	sel, err := metav1.LabelSelectorAsSelector(s)
	return err == nil && sel.Matches(labels.Set(l))
}
