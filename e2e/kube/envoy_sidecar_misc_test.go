package kube

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
)

// TestEnvoyOutboundTrafficPolicy: a host outside the registry is reached
// through Envoy's PassthroughCluster under ALLOW_ANY (the default), and
// blocked (BlackHoleCluster) once a Sidecar sets REGISTRY_ONLY. Also: the
// bootstrap's Prometheus listener serves Envoy's metrics and its readiness
// listener answers.
func TestEnvoyOutboundTrafficPolicy(t *testing.T) {
	const ns = "envoy-egress"
	c, m, vip := echoMesh(t, ns, 45)
	outside := harness.StartHTTPBackend(t, "outside", "10.250.200.1", 9999)
	sc := startSidecar(t, m, ns, "client-0", backendIP(45, 200), map[string]string{"app": "client"})

	echoURL, echoHost := "http://"+vip+":8080/", "echo."+ns+".svc.cluster.local:8080"
	require.Eventually(t, func() bool { return get(echoURL, echoHost).Backend == "echo-0" }, 20*time.Second, 50*time.Millisecond)
	r := get("http://10.250.200.1:9999/", "")
	require.NoError(t, r.Err)
	assert.Equal(t, "outside", r.Backend, "ALLOW_ANY: an unknown host is passed through")
	assert.Positive(t, sc.Counter(t, "cluster.PassthroughCluster.upstream_cx_total"), "through PassthroughCluster")

	lds := sc.statSum(t, "listener_manager.lds.update_success")
	sidecar := &networkingv1.Sidecar{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
	sidecar.Spec.OutboundTrafficPolicy = &networking.OutboundTrafficPolicy{Mode: networking.OutboundTrafficPolicy_REGISTRY_ONLY}
	_, err := c.istio.NetworkingV1().Sidecars(ns).Create(c.ctx, sidecar, metav1.CreateOptions{})
	require.NoError(t, err)
	sc.waitStatAbove(t, "listener_manager.lds.update_success", lds, 15*time.Second)
	require.Eventually(t, func() bool {
		r := get("http://10.250.200.1:9999/", "")
		return r.Err != nil || r.Status >= 500
	}, 10*time.Second, 50*time.Millisecond, "REGISTRY_ONLY must block the unknown host")
	hits := outside.Hits()
	for i := 0; i < 5; i++ {
		r := get("http://10.250.200.1:9999/", "")
		assert.True(t, r.Err != nil || r.Status >= 500, "blocked: %+v", r)
	}
	assert.Equal(t, hits, outside.Hits(), "nothing reached the outside host")
	assert.Positive(t, sc.Counter(t, "cluster.BlackHoleCluster.upstream_cx_none_healthy")+
		sc.Counter(t, "cluster.BlackHoleCluster.upstream_cx_total"), "through BlackHoleCluster")
	assert.Equal(t, "echo-0", get(echoURL, echoHost).Backend, "registry hosts still work under REGISTRY_ONLY")

	// The bank's PodMonitor scrapes port http-envoy-prom (15090).
	prom := httpBody(t, "http://127.0.0.1:"+strconv.Itoa(sc.StatsPort)+"/stats/prometheus")
	assert.Contains(t, prom, "envoy_cluster_upstream_cx_total", "/stats/prometheus serves Envoy's metrics")
	assert.Contains(t, prom, "# TYPE envoy_server_live gauge")
	assert.True(t, sc.ready(), "/healthz/ready on the readiness port")
}

func httpBody(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, url)
	var b []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return string(b)
}

// TestEnvoyBulkheadPerNamespace: the bank's core-banking bulkhead. One
// ServiceEntry host; a DestinationRule in each calling namespace with its own
// connection pool. Each namespace's Envoy gets its own limits (checked in
// Envoy's /config_dump), and while transfer's calls overflow its small pool,
// loan's calls, at the same moment, all succeed. The loan sidecar runs in a
// network namespace of its own (a second pod), so that each Envoy has its
// own ports 15001 and 15006.
func TestEnvoyBulkheadPerNamespace(t *testing.T) {
	c := newCluster(t)
	intercept(t)
	m := startMeshdOnAll(t, "envoy-bulkhead-system")
	loanNet := harness.NewChildNet(t, 1)
	interceptIn(t, loanNet)
	core := harness.StartHTTPBackend(t, "core-banking", backendIP(46, 1), 8443)
	core.SetDelay(500 * time.Millisecond)
	const host, vip = "core.bank.example", "10.97.0.1" // vip in serviceEntryNet
	c.namespace("envoy-transfer", nil)
	c.namespace("envoy-loan", nil)
	se := &networkingv1.ServiceEntry{ObjectMeta: metav1.ObjectMeta{Name: "core-banking", Namespace: "envoy-transfer"}}
	se.Spec.Hosts, se.Spec.Addresses = []string{host}, []string{vip}
	se.Spec.Ports = []*networking.ServicePort{{Number: 8443, Name: "http", Protocol: "HTTP"}}
	se.Spec.Resolution = networking.ServiceEntry_STATIC
	se.Spec.Endpoints = []*networking.WorkloadEntry{{Address: core.IP}}
	_, err := c.istio.NetworkingV1().ServiceEntries("envoy-transfer").Create(c.ctx, se, metav1.CreateOptions{})
	require.NoError(t, err)
	pool := func(ns string, conns, pending int32) {
		dr := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "core-banking", Namespace: ns}}
		dr.Spec.Host = host
		dr.Spec.ExportTo = []string{"."}
		dr.Spec.TrafficPolicy = &networking.TrafficPolicy{ConnectionPool: &networking.ConnectionPoolSettings{
			Tcp:  &networking.ConnectionPoolSettings_TCPSettings{MaxConnections: conns},
			Http: &networking.ConnectionPoolSettings_HTTPSettings{Http1MaxPendingRequests: pending},
		}}
		_, err := c.istio.NetworkingV1().DestinationRules(ns).Create(c.ctx, dr, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	pool("envoy-transfer", 1, 1)
	pool("envoy-loan", 50, 50)

	transfer := startSidecar(t, m, "envoy-transfer", "app-0", backendIP(47, 200), map[string]string{"app": "app"})
	loan := startSidecarIn(t, m, loanNet, "envoy-loan", "app-0", loanNet.PeerIP, map[string]string{"app": "app"})
	loanClient := loanNet.HTTPClient()
	url := "http://" + vip + ":8443/"
	for _, cl := range []*http.Client{client, loanClient} {
		require.Eventually(t, func() bool { return getVia(cl, url, host).Backend == "core-banking" },
			20*time.Second, 100*time.Millisecond, "core banking through each namespace's Envoy")
	}
	breakers := func(sc *envoySidecar) []any {
		cl := sc.DynamicCluster(t, "outbound|8443||"+host)
		require.NotNil(t, cl, "the ServiceEntry's cluster in %s", sc.NodeID)
		return thresholds(cl["circuit_breakers"], "max_connections", "max_pending_requests")
	}
	assert.Equal(t, []any{1.0, 1.0}, breakers(transfer), "transfer's Envoy has transfer's limits")
	assert.Equal(t, []any{50.0, 50.0}, breakers(loan), "loan's Envoy has loan's limits")

	// Both namespaces call core banking at the same moment, 10 calls each.
	type tally struct{ ok, overflow, other int }
	burst := func(cl *http.Client) <-chan tally {
		out := make(chan tally, 1)
		go func() {
			replies := make(chan reply, 10)
			for i := 0; i < 10; i++ {
				go func() { replies <- getVia(cl, url, host+":8443") }()
			}
			var n tally
			for i := 0; i < 10; i++ {
				switch r := <-replies; {
				case r.Status == http.StatusOK:
					n.ok++
				case r.Status == http.StatusServiceUnavailable && r.Header.Get("x-envoy-overloaded") == "true":
					n.overflow++
				default:
					n.other++
				}
			}
			out <- n
		}()
		return out
	}
	tc, lc := burst(client), burst(loanClient)
	tr, ln := <-tc, <-lc
	t.Logf("at once: transfer (1 connection, 1 pending) %d OK, %d overflowed; loan (50, 50) %d OK, %d overflowed", tr.ok, tr.overflow, ln.ok, ln.overflow)
	assert.Positive(t, tr.overflow, "transfer's pool overflows")
	assert.Zero(t, tr.other, "transfer's calls either succeed or overflow")
	assert.Equal(t, tally{ok: 10}, ln, "loan's calls all succeed: its own pool")
	assert.Positive(t, transfer.Counter(t, "cluster.outbound|8443||"+host+".upstream_rq_pending_overflow"))
	assert.Zero(t, loan.Counter(t, "cluster.outbound|8443||"+host+".upstream_rq_pending_overflow"))
}

// thresholds returns the named fields of the DEFAULT-priority circuit
// breaker thresholds in a cluster's config dump.
func thresholds(breakers any, fields ...string) []any {
	cb, _ := breakers.(map[string]any)
	list, _ := cb["thresholds"].([]any)
	for _, th := range list {
		m, _ := th.(map[string]any)
		if p, ok := m["priority"]; ok && p != "DEFAULT" {
			continue
		}
		out := make([]any, len(fields))
		for i, f := range fields {
			out[i] = m[f]
		}
		return out
	}
	return nil
}
