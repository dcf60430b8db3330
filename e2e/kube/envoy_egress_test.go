package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshd/meshd/e2e/harness"
)

// TestEnvoyEgressGateway: the bank's egress. An "external" host (a backend
// outside the registry's Services, known by a ServiceEntry) is reached by a
// sidecar under REGISTRY_ONLY through the egress gateway only: the
// documented Istio pattern — a Gateway on the egress gateway and a
// VirtualService with two legs (mesh → egress gateway, egress gateway →
// the external host). Envoy's own counters prove the path: the gateway sent
// the requests to the external host, the sidecar never did.
func TestEnvoyEgressGateway(t *testing.T) {
	c := newCluster(t)
	intercept(t)
	// Both Envoys (uid 1337) log to one file: the upstream cluster, the
	// Host and the upstream address of every request.
	logDir, err := os.MkdirTemp("", "egress-log") // not t.TempDir: its parent is closed to uid 1337
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(logDir) })
	require.NoError(t, os.Chmod(logDir, 0o777))
	accessLog := filepath.Join(logDir, "access.log")
	c.namespace("envoy-egress-gw-system", nil)
	c.meshConfigMap("envoy-egress-gw-system", "accessLogFile: "+accessLog+
		"\naccessLogFormat: \"%UPSTREAM_CLUSTER% %REQ(:AUTHORITY)% %UPSTREAM_HOST%\\n\"\n")
	m := startMeshdOnAll(t, "envoy-egress-gw-system")
	const gwNS, appNS, ext = "envoy-egressgw", "envoy-egress-app", "api.partner.example"
	const extVIP = "10.97.0.2" // in serviceEntryNet
	c.namespace(gwNS, nil)
	c.namespace(appNS, nil)
	partner := harness.StartHTTPBackend(t, "partner", "10.250.200.2", 80)

	// The egress gateway: its Service (80 → 8080, as Istio's chart) and
	// one pod, a router Envoy in a network namespace of its own.
	egNet := harness.NewChildNet(t, 4)
	_, err = c.kube.CoreV1().Services(gwNS).Create(c.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "istio-egressgateway", Namespace: gwNS},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"istio": "egressgateway"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	c.createSlice(endpointSlice(gwNS, "istio-egressgateway-1", "istio-egressgateway", "http", 8080,
		[]epSpec{{ip: egNet.PeerIP, ready: true}}))

	se := &networkingv1.ServiceEntry{ObjectMeta: metav1.ObjectMeta{Name: "partner", Namespace: appNS}}
	se.Spec.Hosts, se.Spec.Addresses = []string{ext}, []string{extVIP}
	se.Spec.Ports = []*networking.ServicePort{{Number: 80, Name: "http", Protocol: "HTTP"}}
	se.Spec.Resolution = networking.ServiceEntry_STATIC
	se.Spec.Location = networking.ServiceEntry_MESH_EXTERNAL
	se.Spec.Endpoints = []*networking.WorkloadEntry{{Address: partner.IP}}
	_, err = c.istio.NetworkingV1().ServiceEntries(appNS).Create(c.ctx, se, metav1.CreateOptions{})
	require.NoError(t, err)
	gw := &networkingv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "istio-egressgateway", Namespace: appNS}}
	gw.Spec.Selector = map[string]string{"istio": "egressgateway"}
	gw.Spec.Servers = []*networking.Server{{Port: &networking.Port{Number: 80, Name: "http", Protocol: "HTTP"}, Hosts: []string{ext}}}
	_, err = c.istio.NetworkingV1().Gateways(appNS).Create(c.ctx, gw, metav1.CreateOptions{})
	require.NoError(t, err)
	egressHost := "istio-egressgateway." + gwNS + ".svc.cluster.local"
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "partner-via-egress", Namespace: appNS}}
	vs.Spec.Hosts, vs.Spec.Gateways = []string{ext}, []string{"mesh", "istio-egressgateway"}
	vs.Spec.Http = []*networking.HTTPRoute{
		{Match: []*networking.HTTPMatchRequest{{Gateways: []string{"mesh"}, Port: 80}},
			Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: egressHost, Port: &networking.PortSelector{Number: 80}}}}},
		{Match: []*networking.HTTPMatchRequest{{Gateways: []string{"istio-egressgateway"}, Port: 80}},
			Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: ext, Port: &networking.PortSelector{Number: 80}}}}},
	}
	_, err = c.istio.NetworkingV1().VirtualServices(appNS).Create(c.ctx, vs, metav1.CreateOptions{})
	require.NoError(t, err)
	sidecar := &networkingv1.Sidecar{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: appNS}}
	sidecar.Spec.OutboundTrafficPolicy = &networking.OutboundTrafficPolicy{Mode: networking.OutboundTrafficPolicy_REGISTRY_ONLY}
	_, err = c.istio.NetworkingV1().Sidecars(appNS).Create(c.ctx, sidecar, metav1.CreateOptions{})
	require.NoError(t, err)

	egress := startSidecarIn(t, m, egNet, gwNS, "istio-egressgateway-0", egNet.PeerIP, map[string]string{"istio": "egressgateway"}, "--type", "router")
	app := startSidecar(t, m, appNS, "app-0", backendIP(53, 200), map[string]string{"app": "app"})
	url := "http://" + extVIP + ":80/pay"
	require.Eventually(t, func() bool { return get(url, ext).Backend == "partner" }, 20*time.Second, 100*time.Millisecond,
		"the sidecar reaches %s through the egress gateway", ext)
	got := spread(t, 20, url, ext)
	assert.Equal(t, 20, got["partner"], "every call reaches the partner: %v", got)
	assert.Equal(t, ext, partner.Last().Host, "the partner sees its own host name")

	extCluster := "cluster.outbound|80||" + ext + ".upstream_rq_total"
	viaGateway := fmt.Sprintf("cluster.outbound|80||%s.upstream_rq_total", egressHost)
	assert.GreaterOrEqual(t, egress.Counter(t, extCluster), uint64(20), "the egress gateway sent the calls to the external host")
	assert.GreaterOrEqual(t, app.Counter(t, viaGateway), uint64(20), "the sidecar sent them to the egress gateway")
	assert.Zero(t, app.Counter(t, extCluster), "the sidecar never called the external host itself")

	// The gateway's access log shows the calls leaving for the partner, the
	// sidecar's shows them going to the gateway.
	gatewayLine := "outbound|80||" + ext + " " + ext + " " + partner.IP + ":80"
	sidecarLine := "outbound|80||" + egressHost + " " + ext + " " + egNet.PeerIP + ":8080"
	require.Eventually(t, func() bool {
		b, _ := os.ReadFile(accessLog)
		return strings.Contains(string(b), gatewayLine) && strings.Contains(string(b), sidecarLine)
	}, 10*time.Second, 100*time.Millisecond, "access log lines %q and %q", gatewayLine, sidecarLine)

	// Straight to the partner's address, bypassing the gateway: blocked.
	hits := partner.Hits()
	r := get("http://"+partner.IP+":80/direct", "")
	assert.True(t, r.Err != nil || r.Status >= 500, "REGISTRY_ONLY blocks the direct call: %+v", r)
	assert.Equal(t, hits, partner.Hits(), "the direct call never reached the partner")
}
