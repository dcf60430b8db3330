package kube

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/meshd/meshd/e2e/harness"
)

// The sidecar injection webhook against the real API server: the
// MutatingWebhookConfiguration `meshd manifest` prints, its caBundle
// patched in by meshd, reached by the API server through Service istiod
// (443 → 15017) whose EndpointSlice this test writes (there is no
// controller manager), with --enable-aggregator-routing so the API server
// dials the endpoint rather than a ClusterIP nothing implements.

// injectGolden is the expected injected pod, normalised; rewrite it with
// MESHD_UPDATE_GOLDEN=1.
const injectGolden = "testdata/inject/injected-pod.yaml"

// webhookConfig takes the MutatingWebhookConfiguration from `meshd
// manifest --namespace ns`, its namespace selectors narrowed to only's
// namespaces so that no other test's pods reach it.
func webhookConfig(t *testing.T, ns string, only ...string) *admissionregistrationv1.MutatingWebhookConfiguration {
	dec := k8syaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest(t, "--namespace", ns)), 4096)
	for {
		var raw runtime.RawExtension
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if len(bytes.TrimSpace(raw.Raw)) == 0 || string(raw.Raw) == "null" {
			continue
		}
		var tm metav1.TypeMeta
		require.NoError(t, json.Unmarshal(raw.Raw, &tm))
		if tm.Kind != "MutatingWebhookConfiguration" {
			continue
		}
		var mwc admissionregistrationv1.MutatingWebhookConfiguration
		require.NoError(t, json.Unmarshal(raw.Raw, &mwc))
		for i := range mwc.Webhooks {
			sel := mwc.Webhooks[i].NamespaceSelector
			if sel == nil {
				sel = &metav1.LabelSelector{}
			}
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
				Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpIn, Values: only})
			mwc.Webhooks[i].NamespaceSelector = sel
		}
		return &mwc
	}
	t.Fatal("meshd manifest printed no MutatingWebhookConfiguration")
	return nil
}

// webhookService creates Service istiod in ns (443 → 15017, istiod's port
// name) and its EndpointSlice pointing at ip.
func (c *cluster) webhookService(ns, ip string) {
	_, err := c.kube.CoreV1().Services(ns).Create(c.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "istiod", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "istiod"}, Ports: []corev1.ServicePort{
			{Name: "https-webhook", Port: 443, TargetPort: intstr.FromInt32(15017)}}},
	}, metav1.CreateOptions{})
	require.NoError(c.t, err)
	c.createSlice(endpointSlice(ns, "istiod-webhook", "istiod", "https-webhook", 15017, []epSpec{{ip: ip, ready: true}}))
}

// normalised is pod without what the API server makes up per object.
func normalised(t *testing.T, pod *corev1.Pod) string {
	p := pod.DeepCopy()
	p.UID, p.ResourceVersion, p.Generation, p.ManagedFields = "", "", 0, nil
	p.CreationTimestamp = metav1.Time{}
	p.Status = corev1.PodStatus{}
	p.APIVersion, p.Kind = "v1", "Pod"
	b, err := yaml.Marshal(p)
	require.NoError(t, err)
	return string(b)
}

func appPodSpec(name string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": "transfer", "version": "v1"},
			Annotations: annotations},
		// Set explicitly: the suite's API server runs without the
		// ServiceAccount admission plugin, and istio-token needs one.
		Spec: corev1.PodSpec{ServiceAccountName: "transfer", Containers: []corev1.Container{{
			Name: "transfer", Image: "bank/transfer:1",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{
				HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}}},
		}}},
	}
}

// sendReview posts an AdmissionReview of pod to the webhook at addr over
// TLS trusting root, as the API server does, and returns the response.
func sendReview(t *testing.T, addr, serverName string, root []byte, pod *corev1.Pod) *admissionv1.AdmissionResponse {
	raw, err := json.Marshal(pod)
	require.NoError(t, err)
	body, err := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "resend", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Namespace: pod.Namespace, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}}})
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(root))
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: serverName}}}
	resp, err := client.Post("https://"+addr+"/inject", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	var out admissionv1.AdmissionReview
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	require.NotNil(t, out.Response)
	return out.Response
}

func TestInject(t *testing.T) {
	c := newCluster(t)
	const sys, on, off = "inject-system", "inject-on", "inject-off"
	c.namespace(sys, nil)
	c.namespace(on, map[string]string{"istio-injection": "enabled"})
	c.namespace(off, nil)
	ip := backendIP(233, 17)
	addr := ip + ":15017"
	c.webhookService(sys, ip)

	mwc := webhookConfig(t, sys, on, off)
	require.Equal(t, "istio-sidecar-injector-"+sys, mwc.Name, "meshd's default name for its namespace is the manifest's")
	_, err := c.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(c.ctx, mwc, metav1.CreateOptions{})
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = c.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(c.ctx, mwc.Name, metav1.DeleteOptions{})
	})

	startMeshd(t, sys, "--secure-xds-address", "127.0.0.1:"+strconv.Itoa(harness.FreePort(t)),
		"--injector-address", addr, "--proxy-image", "docker.io/istio/proxyv2:1.29.6")
	root := c.rootCert(on)

	t.Run("meshd sets every webhook's caBundle to the mesh root", func(t *testing.T) {
		require.Eventually(t, func() bool {
			got, err := c.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(c.ctx, mwc.Name, metav1.GetOptions{})
			if err != nil {
				return false
			}
			for _, w := range got.Webhooks {
				if !bytes.Equal(w.ClientConfig.CABundle, root) {
					return false
				}
			}
			return len(got.Webhooks) > 0
		}, 20*time.Second, 50*time.Millisecond)
	})

	t.Run("an emptied caBundle is put back", func(t *testing.T) {
		cur, err := c.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(c.ctx, mwc.Name, metav1.GetOptions{})
		require.NoError(t, err)
		cur.Webhooks[0].ClientConfig.CABundle = nil // as a re-applied chart or manifest does
		_, err = c.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(c.ctx, cur, metav1.UpdateOptions{})
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			got, err := c.kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(c.ctx, mwc.Name, metav1.GetOptions{})
			return err == nil && bytes.Equal(got.Webhooks[0].ClientConfig.CABundle, root)
		}, 20*time.Second, 50*time.Millisecond)
	})

	pods := func(ns string) podCreator { return podCreator{c: c, ns: ns} }
	var injected *corev1.Pod
	t.Run("a pod in an istio-injection=enabled namespace comes back injected", func(t *testing.T) {
		// Until the webhook serves, the API server's calls fail (failurePolicy Fail).
		var last error
		if !assert.Eventually(t, func() bool {
			_, last = pods(on).Create(appPodSpec("probe", nil), true)
			return last == nil
		}, 20*time.Second, 100*time.Millisecond, "the API server reaches the webhook") {
			require.NoError(t, last)
		}
		injected, err = pods(on).Create(appPodSpec("transfer", nil), false)
		require.NoError(t, err)
		got := normalised(t, injected)
		if os.Getenv("MESHD_UPDATE_GOLDEN") != "" {
			require.NoError(t, os.MkdirAll(filepath.Dir(injectGolden), 0o755))
			require.NoError(t, os.WriteFile(injectGolden, []byte(got), 0o644))
		}
		want, err := os.ReadFile(injectGolden)
		require.NoError(t, err, "run with MESHD_UPDATE_GOLDEN=1 to write it")
		assert.Equal(t, string(want), got, "%s differs (MESHD_UPDATE_GOLDEN=1 rewrites it)", injectGolden)
	})

	t.Run("a pod in an unlabelled namespace is untouched", func(t *testing.T) {
		p, err := pods(off).Create(appPodSpec("plain", nil), false)
		require.NoError(t, err)
		require.Len(t, p.Spec.Containers, 1)
		assert.Empty(t, p.Spec.InitContainers)
		assert.NotContains(t, p.Annotations, "sidecar.istio.io/status")
	})

	t.Run("a pod with a bad annotation is refused with a clear message", func(t *testing.T) {
		_, err := pods(on).Create(appPodSpec("bad", map[string]string{
			"sidecar.istio.io/proxyCPU":                        "lots",
			"traffic.sidecar.istio.io/includeOutboundIPRanges": "10.0.0.0/99"}), false)
		require.Error(t, err)
		assert.Equal(t, `admission webhook "namespace.sidecar-injector.istio.io" denied the request: sidecar injection: `+
			`annotation sidecar.istio.io/proxyCPU "lots": want a Kubernetes quantity such as 100m or 128Mi; `+
			`annotation traffic.sidecar.istio.io/includeOutboundIPRanges "10.0.0.0/99": want "*" or comma-separated CIDRs `+
			`such as 10.0.0.0/8; "10.0.0.0/99" is not one`, err.Error())
	})

	t.Run("an injected pod created again, or re-sent to the webhook, is unchanged", func(t *testing.T) {
		require.NotNil(t, injected)
		again := injected.DeepCopy()
		again.Name, again.UID, again.ResourceVersion, again.ManagedFields = "transfer-again", "", "", nil
		again.CreationTimestamp = metav1.Time{}
		stored, err := pods(on).Create(again, false)
		require.NoError(t, err)
		want, _ := json.Marshal(injected.Spec)
		got, _ := json.Marshal(stored.Spec)
		assert.Equal(t, string(want), string(got), "the spec is byte-identical")
		assert.Equal(t, injected.Annotations, stored.Annotations)
		assert.Equal(t, injected.Labels, stored.Labels)

		resp := sendReview(t, addr, "istiod."+sys+".svc", root, injected)
		assert.True(t, resp.Allowed)
		assert.Nil(t, resp.Patch, "nothing to add to an injected pod")
	})
}

// podCreator creates pods in one namespace, optionally as a server-side
// dry run (which still calls the webhook: sideEffects None).
type podCreator struct {
	c  *cluster
	ns string
}

func (p podCreator) Create(pod *corev1.Pod, dryRun bool) (*corev1.Pod, error) {
	opts := metav1.CreateOptions{}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	pod = pod.DeepCopy()
	pod.Namespace = p.ns
	return p.c.kube.CoreV1().Pods(p.ns).Create(p.c.ctx, pod, opts)
}
