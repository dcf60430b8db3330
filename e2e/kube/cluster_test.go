package kube

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/e2e/testenv"
)

// cluster is one test's view of the shared API server: typed clients and
// helpers that create objects and delete them when the test ends.
type cluster struct {
	t     *testing.T
	kube  kubernetes.Interface
	istio istioclient.Interface
	ctx   context.Context
}

func newCluster(t *testing.T) *cluster {
	e := testenv.Need(t, env)
	t.Cleanup(func() { e.DumpLogs(t) })
	cfg, err := clientcmd.BuildConfigFromFlags("", e.Kubeconfig)
	require.NoError(t, err)
	cfg.QPS, cfg.Burst = 100, 200
	kc, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)
	ic, err := istioclient.NewForConfig(cfg)
	require.NoError(t, err)
	return &cluster{t: t, kube: kc, istio: ic, ctx: context.Background()}
}

// namespace creates a namespace with labels, deleted at the end of the test.
func (c *cluster) namespace(name string, labels map[string]string) {
	_, err := c.kube.CoreV1().Namespaces().Create(c.ctx,
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	require.NoError(c.t, err)
	c.t.Cleanup(func() { _ = c.kube.CoreV1().Namespaces().Delete(context.Background(), name, metav1.DeleteOptions{}) })
}

// service creates a ClusterIP Service with one gRPC port.
func (c *cluster) service(ns, name string, port int32) {
	_, err := c.kube.CoreV1().Services(ns).Create(c.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "grpc", Port: port}},
		},
	}, metav1.CreateOptions{})
	require.NoError(c.t, err)
}

// pod creates a Pod carrying labels, so DestinationRule subsets can select
// the endpoints that reference it.
func (c *cluster) pod(ns, name string, labels map[string]string) {
	c.podAs(ns, name, "", labels)
}

// podAs is pod running as service account sa ("" for the namespace's
// default).
func (c *cluster) podAs(ns, name, sa string, labels map[string]string) {
	_, err := c.kube.CoreV1().Pods(ns).Create(c.ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.PodSpec{ServiceAccountName: sa, Containers: []corev1.Container{{Name: "app", Image: "app"}}},
	}, metav1.CreateOptions{})
	require.NoError(c.t, err)
}

// ep describes one endpoint of a slice.
type ep struct {
	b           *harness.Backend
	pod         string // targetRef, optional
	ready       bool
	terminating bool
}

// slice builds an EndpointSlice of service svc with endpoints eps on its
// gRPC port.
func slice(ns, name, svc string, port int32, eps ...ep) *discoveryv1.EndpointSlice {
	specs := make([]epSpec, len(eps))
	for i, e := range eps {
		specs[i] = epSpec{ip: e.b.IP, pod: e.pod, ready: e.ready, terminating: e.terminating}
	}
	return endpointSlice(ns, name, svc, "grpc", port, specs)
}

// epSpec is one endpoint of an EndpointSlice, whatever serves it.
type epSpec struct {
	ip, pod            string
	ready, terminating bool
}

// endpointSlice builds an EndpointSlice of svc whose endpoints serve the
// port portName.
func endpointSlice(ns, name, svc, portName string, port int32, eps []epSpec) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr(portName), Port: &port}},
	}
	for _, e := range eps {
		ready, serving, term := e.ready, e.ready || e.terminating, e.terminating
		x := discoveryv1.Endpoint{Addresses: []string{e.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &term}}
		if e.pod != "" {
			x.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: e.pod}
		}
		s.Endpoints = append(s.Endpoints, x)
	}
	return s
}

func ptr[T any](v T) *T { return &v }

// createSlice creates s.
func (c *cluster) createSlice(s *discoveryv1.EndpointSlice) {
	_, err := c.kube.DiscoveryV1().EndpointSlices(s.Namespace).Create(c.ctx, s, metav1.CreateOptions{})
	require.NoError(c.t, err)
}

// updateSlice replaces s's endpoints (and returns when the API server has
// accepted the write).
func (c *cluster) updateSlice(s *discoveryv1.EndpointSlice) {
	cur, err := c.kube.DiscoveryV1().EndpointSlices(s.Namespace).Get(c.ctx, s.Name, metav1.GetOptions{})
	require.NoError(c.t, err)
	cur.Endpoints, cur.Ports = s.Endpoints, s.Ports
	_, err = c.kube.DiscoveryV1().EndpointSlices(s.Namespace).Update(c.ctx, cur, metav1.UpdateOptions{})
	require.NoError(c.t, err)
}

// applyYAML writes a file for --mesh-config and returns its path.
func writeMeshConfig(t *testing.T, yaml string) string {
	path := filepath.Join(t.TempDir(), "mesh.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yaml), 0o644))
	return path
}

// startMeshd runs meshd against the test API server. Each test uses its own
// --istio-namespace so mesh ConfigMaps of different tests never mix.
func startMeshd(t *testing.T, istioNS string, args ...string) *harness.Meshd {
	args = append([]string{"--kubeconfig", env.Kubeconfig, "--istio-namespace", istioNS}, args...)
	return harness.StartMeshd(t, meshdBin, 60*time.Second, args)
}

// startMeshdOnAll is startMeshd with ADS on every address of the suite's
// namespace, for sidecars in child namespaces (harness.ChildNet).
func startMeshdOnAll(t *testing.T, istioNS string, args ...string) *harness.Meshd {
	args = append([]string{"--kubeconfig", env.Kubeconfig, "--istio-namespace", istioNS}, args...)
	return harness.StartMeshdOn(t, "0.0.0.0", meshdBin, 60*time.Second, args)
}

// backendIP returns 10.250.<net>.<host>, an address of the test's network
// namespace.
func backendIP(net, host int) string { return fmt.Sprintf("10.250.%d.%d", net, host) }

// nodeID is an istiod-style node ID of a proxyless client in ns.
func nodeID(name, ns string) string {
	return fmt.Sprintf("sidecar~10.250.255.1~%s.%s~%s.svc.cluster.local", name, ns, ns)
}

// registryHas reports whether /debug/registryz lists a service hostname
// containing s.
func registryHas(t *testing.T, m *harness.Meshd, s string) bool {
	var reg []map[string]any
	m.GetJSON(t, "/debug/registryz", &reg)
	for _, svc := range reg {
		if h, _ := svc["hostname"].(string); strings.Contains(h, s) {
			return true
		}
	}
	return false
}
