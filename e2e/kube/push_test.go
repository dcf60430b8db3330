package kube

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	networking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/internal/xdsclient"
	"github.com/meshd/meshd/translate"
	"github.com/meshd/meshd/xds"
)

// sidecar connects an Envoy-like ADS client (wildcard CDS and LDS) as a
// sidecar of pod name in ns.
func sidecar(t *testing.T, m *harness.Meshd, name, ns string) *xdsclient.Client {
	conn, err := grpc.NewClient(m.XDSAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	c, err := xdsclient.Start(conn, fmt.Sprintf("sidecar~10.250.9.1~%s.%s~%s.svc.cluster.local", name, ns, ns),
		map[string]any{"NAMESPACE": ns})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

// settled waits until the client has config of every type and nothing new
// arrived for quiet.
func settled(t *testing.T, c *xdsclient.Client, quiet time.Duration) map[string]xdsclient.TypeStats {
	require.Eventually(t, func() bool {
		st := c.Stats()
		for _, typ := range xdsclient.Types {
			if st[typ].Responses == 0 {
				return false
			}
		}
		return time.Since(latest(st)) > quiet
	}, 20*time.Second, 20*time.Millisecond, "%s never settled: %+v", c.NodeID(), c.Stats())
	require.NoError(t, c.Err())
	return c.Stats()
}

func latest(st map[string]xdsclient.TypeStats) time.Time {
	var at time.Time
	for _, s := range st {
		if s.At.After(at) {
			at = s.At
		}
	}
	return at
}

// responses returns the response count per type.
func responses(st map[string]xdsclient.TypeStats) map[string]int {
	out := map[string]int{}
	for typ, s := range st {
		out[typ] = s.Responses
	}
	return out
}

// TestScopedPushes: a proxy under a Sidecar limited to its own namespace
// never receives another namespace's services; an EndpointSlice change sends
// only EDS, and only to the proxies that watch that cluster; a VirtualService
// change in one namespace is sent to no proxy whose scope excludes it.
// meshd_config_propagation_seconds is printed at the end.
func TestScopedPushes(t *testing.T) {
	c := newCluster(t)
	m := startMeshd(t, "scoped-system")
	c.namespace("scoped-a", nil)
	c.namespace("scoped-b", nil)
	for i, ns := range []string{"scoped-a", "scoped-b"} {
		c.service(ns, "echo", 7070)
		b := harness.StartBackend(t, ns, backendIP(7, i+1), 7070)
		c.createSlice(slice(ns, "echo-1", "echo", 7070, ep{b: b, ready: true}))
	}
	_, err := c.istio.NetworkingV1().Sidecars("scoped-a").Create(c.ctx, &networkingv1.Sidecar{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: "scoped-a"},
		Spec:       networking.Sidecar{Egress: []*networking.IstioEgressListener{{Hosts: []string{"./*"}}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return registryHas(t, m, "echo.scoped-b.svc") }, 15*time.Second, 50*time.Millisecond)

	pa, pb := sidecar(t, m, "pa", "scoped-a"), sidecar(t, m, "pb", "scoped-b")
	a0, b0 := settled(t, pa, 500*time.Millisecond), settled(t, pb, 500*time.Millisecond)
	t.Logf("pa clusters: %v", a0["cds"].Names)
	assert.Contains(t, strings.Join(a0["cds"].Names, " "), "echo.scoped-a.svc.cluster.local")
	for _, typ := range xdsclient.Types {
		for _, n := range a0[typ].Names {
			assert.NotContains(t, n, "scoped-b", "%s: a proxy under Sidecar ./* must not receive scoped-b's services", typ)
		}
	}
	assert.Contains(t, strings.Join(b0["cds"].Names, " "), "echo.scoped-a.svc.cluster.local", "pb has no Sidecar: it sees both")
	var why translate.ScopeExplanation
	m.GetJSON(t, "/debug/sidecarz?proxyID=pa.scoped-a", &why)
	assert.Equal(t, "default", why.Sidecar.Name, "/debug/sidecarz names the Sidecar: %+v", why.Sidecar)
	for _, svc := range why.HiddenServices {
		if svc.Namespace == "scoped-b" {
			t.Logf("sidecarz: %s hidden: %s", svc.Hostname, svc.Reason)
		}
	}

	// 1. scoped-b's endpoints change: pb gets EDS only, pa nothing.
	b2 := harness.StartBackend(t, "scoped-b-2", backendIP(7, 3), 7070)
	bBackend := &harness.Backend{IP: backendIP(7, 2)}
	changed := pb.Changed()
	c.updateSlice(slice("scoped-b", "echo-1", "echo", 7070, ep{b: bBackend, ready: true}, ep{b: b2, ready: true}))
	select {
	case <-changed:
	case <-time.After(15 * time.Second):
		t.Fatal("pb never received the endpoint change")
	}
	a1, b1 := settled(t, pa, 500*time.Millisecond), settled(t, pb, 500*time.Millisecond)
	assert.Equal(t, responses(a0), responses(a1), "pa does not watch scoped-b's endpoints: nothing may be sent to it")
	want := responses(b0)
	want["eds"]++
	assert.Equal(t, want, responses(b1), "an EndpointSlice change sends exactly one EDS response and nothing else")
	assert.Equal(t, 1, b1["eds"].Resources-b0["eds"].Resources, "only the changed ClusterLoadAssignment is sent")

	// 2. A VirtualService in scoped-b: pb is pushed routes, pa (scope ./*) nothing.
	_, err = c.istio.NetworkingV1().VirtualServices("scoped-b").Create(c.ctx, &networkingv1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: "echo", Namespace: "scoped-b"},
		Spec: networking.VirtualService{Hosts: []string{"echo"}, Http: []*networking.HTTPRoute{{
			Timeout: nil, Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: "echo"}}},
			Retries: &networking.HTTPRetry{Attempts: 7},
		}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { return pb.Stats()["rds"].Responses > b1["rds"].Responses },
		15*time.Second, 20*time.Millisecond, "pb must receive the new routes")
	a2 := settled(t, pa, 500*time.Millisecond)
	settled(t, pb, 500*time.Millisecond)
	assert.Equal(t, responses(a1), responses(a2), "a VirtualService outside pa's scope must not be pushed to pa")
	// ... nor even rebuilt: /debug/push_status says the push rebuilt pb's
	// scope for the VirtualService and skipped pa's.
	var push xds.PushStatus
	m.GetJSON(t, "/debug/push_status", &push)
	t.Logf("push_status after the VirtualService: %+v", push)
	if assert.Contains(t, push.Changed, "VirtualService scoped-b/echo", "the last push is the VirtualService's") {
		assert.Equal(t, map[string]int{"VirtualService scoped-b/echo": 1}, push.RebuildReasons)
		assert.Equal(t, 1, push.ScopesBuilt, "pb's scope only")
		assert.Equal(t, 1, push.ScopesSkipped, "pa's scope keeps its snapshot")
	}

	// meshd_config_propagation_seconds: from the watcher seeing a change to the ACK.
	p50, p99, n := propagation(t, m)
	t.Logf("meshd_config_propagation_seconds over %d ACKs: p50 %.3fs, p99 %.3fs", n, p50, p99)
	assert.Positive(t, n)
}

// propagation scrapes meshd_config_propagation_seconds (all types) and
// estimates p50 and p99 from its buckets (upper bounds).
func propagation(t *testing.T, m *harness.Meshd) (p50, p99 float64, n uint64) {
	resp, err := http.Get(m.AdminURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	fam, ok := fams["meshd_config_propagation_seconds"]
	require.True(t, ok, "meshd_config_propagation_seconds must be exported")
	counts := map[float64]uint64{}
	var bounds []float64
	for _, mt := range fam.GetMetric() {
		h := mt.GetHistogram()
		n += h.GetSampleCount()
		for _, b := range h.GetBucket() {
			if _, seen := counts[b.GetUpperBound()]; !seen {
				bounds = append(bounds, b.GetUpperBound())
			}
			counts[b.GetUpperBound()] += b.GetCumulativeCount()
		}
	}
	quantile := func(q float64) float64 {
		for _, b := range bounds {
			if float64(counts[b]) >= q*float64(n) {
				return b
			}
		}
		return -1 // beyond the last bucket
	}
	return quantile(0.5), quantile(0.99), n
}
