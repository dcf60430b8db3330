package kube

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
)

// featureMesh is one namespace of HTTP services, each with its own
// backends, behind one Envoy sidecar.
type featureMesh struct {
	t   *testing.T
	c   *cluster
	ns  string
	net int
	vip map[string]string
}

// svc creates Service name (HTTP port 8080) with one backend per name in
// pods (labels app=name, version=<pod name>), and returns the backends.
func (f *featureMesh) svc(name string, pods ...string) []*harness.HTTPBackend {
	f.vip[name] = f.c.httpService(f.ns, name, 8080)
	var eps []hep
	var out []*harness.HTTPBackend
	for _, pod := range pods {
		host := 1 + len(f.vip)*10 + len(out)
		b := harness.StartHTTPBackend(f.t, pod, backendIP(f.net, host), 8080)
		f.c.pod(f.ns, pod, map[string]string{"app": name, "version": pod})
		eps = append(eps, hep{b: b, pod: pod, ready: true})
		out = append(out, b)
	}
	f.c.createSlice(httpSlice(f.ns, name+"-1", name, 8080, eps...))
	return out
}

// url and host of Service name, as the application calls it.
func (f *featureMesh) url(name, path string) (string, string) {
	return "http://" + f.vip[name] + ":8080" + path, name + "." + f.ns + ".svc.cluster.local:8080"
}

func (f *featureMesh) vs(name string, spec *networking.VirtualService) {
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns}}
	vs.Spec.Hosts, vs.Spec.Http = spec.Hosts, spec.Http
	_, err := f.c.istio.NetworkingV1().VirtualServices(f.ns).Create(f.c.ctx, vs, metav1.CreateOptions{})
	require.NoError(f.t, err)
}

func (f *featureMesh) dr(name string, spec *networking.DestinationRule) {
	dr := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: f.ns}}
	dr.Spec.Host, dr.Spec.TrafficPolicy, dr.Spec.Subsets = spec.Host, spec.TrafficPolicy, spec.Subsets
	_, err := f.c.istio.NetworkingV1().DestinationRules(f.ns).Create(f.c.ctx, dr, metav1.CreateOptions{})
	require.NoError(f.t, err)
}

func dst(host, subset string) []*networking.HTTPRouteDestination {
	return []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: host, Subset: subset}}}
}

// TestEnvoyTrafficFeatures: Istio's traffic features, as meshd translates
// them, work on real Envoy with real requests: retries, timeouts, fault
// delay and abort, header match, rewrite, mirror, outlier ejection and
// connection-pool overflow.
func TestEnvoyTrafficFeatures(t *testing.T) {
	c := newCluster(t)
	intercept(t)
	m := startMeshd(t, "envoy-features-system")
	f := &featureMesh{t: t, c: c, ns: "envoy-features", net: 42, vip: map[string]string{}}
	c.namespace(f.ns, nil)

	flakyPlain := f.svc("plain", "plain-0")[0]
	flakyPlain.FailEveryOther(http.StatusInternalServerError)
	f.svc("retry", "retry-0")[0].FailEveryOther(http.StatusInternalServerError)
	f.vs("retry", &networking.VirtualService{Hosts: []string{"retry"}, Http: []*networking.HTTPRoute{{
		Route:   dst("retry", ""),
		Retries: &networking.HTTPRetry{Attempts: 3, RetryOn: "5xx", PerTryTimeout: durationpb.New(2 * time.Second)},
	}}})
	f.svc("slow", "slow-0")[0].SetDelay(3 * time.Second)
	f.vs("slow", &networking.VirtualService{Hosts: []string{"slow"}, Http: []*networking.HTTPRoute{{
		Route: dst("slow", ""), Timeout: durationpb.New(300 * time.Millisecond),
	}}})
	f.svc("fault", "fault-0")
	f.vs("fault", &networking.VirtualService{Hosts: []string{"fault"}, Http: []*networking.HTTPRoute{
		{Match: []*networking.HTTPMatchRequest{{Headers: map[string]*networking.StringMatch{"x-fault": {MatchType: &networking.StringMatch_Exact{Exact: "abort"}}}}},
			Route: dst("fault", ""), Fault: &networking.HTTPFaultInjection{Abort: &networking.HTTPFaultInjection_Abort{
				ErrorType: &networking.HTTPFaultInjection_Abort_HttpStatus{HttpStatus: 418}, Percentage: &networking.Percent{Value: 100}}}},
		{Match: []*networking.HTTPMatchRequest{{Headers: map[string]*networking.StringMatch{"x-fault": {MatchType: &networking.StringMatch_Exact{Exact: "delay"}}}}},
			Route: dst("fault", ""), Fault: &networking.HTTPFaultInjection{Delay: &networking.HTTPFaultInjection_Delay{
				HttpDelayType: &networking.HTTPFaultInjection_Delay_FixedDelay{FixedDelay: durationpb.New(500 * time.Millisecond)}, Percentage: &networking.Percent{Value: 100}}}},
		{Route: dst("fault", "")},
	}})
	f.svc("echo", "echo-v1", "echo-v2")
	shadow := f.svc("shadow", "shadow-0")[0]
	f.dr("echo", &networking.DestinationRule{Host: "echo", Subsets: []*networking.Subset{
		{Name: "v1", Labels: map[string]string{"version": "echo-v1"}},
		{Name: "v2", Labels: map[string]string{"version": "echo-v2"}},
	}})
	f.vs("echo", &networking.VirtualService{Hosts: []string{"echo"}, Http: []*networking.HTTPRoute{
		{Match: []*networking.HTTPMatchRequest{{Headers: map[string]*networking.StringMatch{"x-canary": {MatchType: &networking.StringMatch_Exact{Exact: "yes"}}}}},
			Route: dst("echo", "v2")},
		{Match: []*networking.HTTPMatchRequest{{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "/old/"}}}},
			Rewrite: &networking.HTTPRewrite{Uri: "/new/"}, Route: dst("echo", "v1")},
		{Route: dst("echo", "v1"), Mirror: &networking.Destination{Host: "shadow"}, MirrorPercentage: &networking.Percent{Value: 100}},
	}})
	flaky := f.svc("flaky", "flaky-good", "flaky-bad")
	flaky[1].SetStatus(http.StatusServiceUnavailable)
	f.dr("flaky", &networking.DestinationRule{Host: "flaky", TrafficPolicy: &networking.TrafficPolicy{
		OutlierDetection: &networking.OutlierDetection{
			Consecutive_5XxErrors: wrapperspb.UInt32(2), Interval: durationpb.New(100 * time.Millisecond),
			BaseEjectionTime: durationpb.New(time.Minute), MaxEjectionPercent: 100},
	}})
	f.svc("pool", "pool-0")[0].SetDelay(time.Second)
	f.dr("pool", &networking.DestinationRule{Host: "pool", TrafficPolicy: &networking.TrafficPolicy{
		ConnectionPool: &networking.ConnectionPoolSettings{
			Tcp:  &networking.ConnectionPoolSettings_TCPSettings{MaxConnections: 1},
			Http: &networking.ConnectionPoolSettings_HTTPSettings{Http1MaxPendingRequests: 1, MaxRequestsPerConnection: 1},
		},
	}})

	ledgerVIP := c.httpServiceNamed(f.ns, "ledger", "grpc", 9090)
	l1 := harness.StartBackend(t, "ledger-0", backendIP(f.net, 201), 9090)
	l2 := harness.StartBackend(t, "ledger-1", backendIP(f.net, 202), 9090)
	c.createSlice(slice(f.ns, "ledger-1", "ledger", 9090, ep{b: l1, ready: true}, ep{b: l2, ready: true}))

	sc := startSidecar(t, m, f.ns, "client-0", backendIP(f.net, 250), map[string]string{"app": "client"})
	for _, name := range []string{"plain", "retry", "slow", "fault", "echo", "shadow", "flaky", "pool"} {
		u, h := f.url(name, "/")
		require.Eventually(t, func() bool {
			r := get(u, h, "x-fault", "none")
			return r.Err == nil && r.Status != http.StatusNotFound && (r.Backend != "" || name == "slow")
		}, 20*time.Second, 100*time.Millisecond, "service %s never answered through Envoy", name)
	}

	t.Run("retries", func(t *testing.T) {
		u, h := f.url("plain", "/")
		got := spread(t, 20, u, h)
		assert.Greater(t, got[""], 0, "without a retry policy, 500s reach the application: %v", got)
		u, h = f.url("retry", "/")
		before := sc.statSum(t, "retry."+f.ns+".svc.cluster.local.upstream_rq_retry")
		got = spread(t, 20, u, h)
		assert.Equal(t, 20, got["retry-0"], "retries (attempts 3, retryOn 5xx) hide every other 500: %v", got)
		assert.Greater(t, sc.statSum(t, "retry."+f.ns+".svc.cluster.local.upstream_rq_retry"), before, "Envoy retried")
	})
	t.Run("timeout", func(t *testing.T) {
		u, h := f.url("slow", "/")
		r := get(u, h)
		require.NoError(t, r.Err)
		assert.Equal(t, http.StatusGatewayTimeout, r.Status)
		assert.Less(t, r.Took, 2*time.Second, "the 300ms route timeout cut the 3s backend short")
	})
	t.Run("fault", func(t *testing.T) {
		u, h := f.url("fault", "/")
		r := get(u, h, "x-fault", "abort")
		assert.Equal(t, 418, r.Status, "abort 418")
		const delays = "fault.delays_injected"
		before := sc.statSum(t, delays)
		r = get(u, h, "x-fault", "delay")
		assert.Equal(t, http.StatusOK, r.Status)
		// Envoy's timers tick in milliseconds: 499.7 ms has been seen.
		assert.GreaterOrEqual(t, r.Took, 490*time.Millisecond, "fixed delay 500ms")
		assert.Equal(t, before+1, sc.statSum(t, delays), "Envoy injected the delay")
		r = get(u, h)
		assert.Equal(t, "fault-0", r.Backend)
		assert.Equal(t, before+1, sc.statSum(t, delays), "no delay without the header")
	})
	t.Run("header match", func(t *testing.T) {
		u, h := f.url("echo", "/")
		for i := 0; i < 10; i++ {
			assert.Equal(t, "echo-v2", get(u, h, "x-canary", "yes").Backend)
			assert.Equal(t, "echo-v1", get(u, h).Backend)
		}
	})
	t.Run("rewrite", func(t *testing.T) {
		u, h := f.url("echo", "/old/page")
		r := get(u, h)
		assert.Equal(t, "echo-v1", r.Backend)
		assert.Equal(t, "/new/page", r.Echo.Path, "uri prefix /old/ rewritten to /new/")
	})
	t.Run("mirror", func(t *testing.T) {
		before := shadow.Hits()
		u, h := f.url("echo", "/mirrored")
		for i := 0; i < 5; i++ {
			assert.Equal(t, "echo-v1", get(u, h).Backend)
		}
		require.Eventually(t, func() bool { return shadow.Hits() >= before+5 }, 5*time.Second, 20*time.Millisecond,
			"shadow got %d mirrored requests", shadow.Hits()-before)
		assert.Equal(t, "/mirrored", shadow.Last().Path)
		assert.Contains(t, shadow.Last().Host, "-shadow", "Envoy marks mirrored requests' Host with -shadow")
	})
	t.Run("outlier ejection", func(t *testing.T) {
		u, h := f.url("flaky", "/")
		stat := fmt.Sprintf("cluster.outbound|8080||flaky.%s.svc.cluster.local.outlier_detection.ejections_enforced_total", f.ns)
		require.Eventually(t, func() bool {
			get(u, h)
			return sc.Counter(t, stat) > 0
		}, 10*time.Second, 20*time.Millisecond, "flaky-bad was never ejected")
		bad := flaky[1].Hits()
		got := spread(t, 20, u, h)
		assert.Equal(t, 20, got["flaky-good"], "after ejection every request goes to flaky-good: %v", got)
		assert.Equal(t, bad, flaky[1].Hits(), "the ejected endpoint receives nothing")
	})
	t.Run("connection pool overflow", func(t *testing.T) {
		u, h := f.url("pool", "/")
		var wg sync.WaitGroup
		replies := make([]reply, 8)
		for i := range replies {
			wg.Add(1)
			go func() { defer wg.Done(); replies[i] = get(u, h) }()
		}
		wg.Wait()
		ok, overflow := 0, 0
		for _, r := range replies {
			switch {
			case r.Status == http.StatusOK:
				ok++
			case r.Status == http.StatusServiceUnavailable && r.Header.Get("x-envoy-overloaded") == "true":
				overflow++
			}
		}
		t.Logf("connection pool 1 connection, 1 pending: 8 concurrent requests → %d OK, %d overflowed (503, x-envoy-overloaded: UO)", ok, overflow)
		assert.GreaterOrEqual(t, ok, 1)
		assert.GreaterOrEqual(t, overflow, 1, "some requests overflow the pool")
		assert.Equal(t, len(replies), ok+overflow, "every request either succeeded or overflowed: %+v", replies)
		assert.Positive(t, sc.Counter(t, fmt.Sprintf("cluster.outbound|8080||pool.%s.svc.cluster.local.upstream_rq_pending_overflow", f.ns)))
	})
	t.Run("grpc", func(t *testing.T) {
		// A gRPC application dials the Service's ClusterIP; Envoy carries
		// HTTP/2 to both backends.
		conn, err := grpc.NewClient(ledgerVIP+":9090", grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		got := map[string]int{}
		require.Eventually(t, func() bool {
			name, err := harness.Call(c.ctx, conn)
			if err == nil {
				got[name]++
			}
			return got["ledger-0"] > 0 && got["ledger-1"] > 0
		}, 10*time.Second, 10*time.Millisecond, "gRPC through Envoy reaches both backends: %v", got)
		for i := 0; i < 20; i++ {
			_, err := harness.Call(c.ctx, conn)
			require.NoError(t, err, "gRPC call %d through Envoy", i)
		}
		assert.Positive(t, sc.Counter(t, fmt.Sprintf("cluster.outbound|9090||ledger.%s.svc.cluster.local.upstream_cx_http2_total", f.ns)),
			"Envoy spoke HTTP/2 to the gRPC backends")
	})
}
