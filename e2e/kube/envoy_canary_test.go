package kube

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshd/meshd/e2e/harness"
)

// statSum adds up every Envoy stat whose name ends in suffix (e.g.
// ".rds.8080.update_success", whatever the connection manager's prefix).
func (s *envoySidecar) statSum(t *testing.T, suffix string) uint64 {
	n, err := s.tryStatSum(suffix)
	require.NoError(t, err)
	return n
}

func (s *envoySidecar) tryStatSum(suffix string) (uint64, error) {
	st, err := s.TryStats(regexp.QuoteMeta(suffix) + "$")
	var n uint64
	for name, v := range st {
		if strings.HasSuffix(name, suffix) {
			n += v
		}
	}
	return n, err
}

// waitStatAbove waits until statSum(suffix) exceeds before and returns how
// long that took (polled every 5 ms, reading only the matching stats).
func (s *envoySidecar) waitStatAbove(t *testing.T, suffix string, before uint64, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	require.Eventually(t, func() bool {
		n, err := s.tryStatSum(suffix)
		return err == nil && n > before
	}, within, 5*time.Millisecond, "envoy stat *%s stayed at %d", suffix, before)
	return time.Since(start)
}

// TestEnvoyCanary: the bank's canary release on real Envoy. The
// VirtualService moves 90/10 → 50/50 → 0/100 over DestinationRule subsets;
// after Envoy has taken each route update, 600 requests sent to the
// Service's ClusterIP through the sidecar split within the tolerance.
func TestEnvoyCanary(t *testing.T) {
	c := newCluster(t)
	intercept(t)
	m := startMeshd(t, "envoy-canary-system")
	const ns = "envoy-canary"
	c.namespace(ns, nil)
	vip := c.httpService(ns, "echo", 8080)
	v1 := harness.StartHTTPBackend(t, "v1", backendIP(40, 1), 8080)
	v2 := harness.StartHTTPBackend(t, "v2", backendIP(40, 2), 8080)
	c.pod(ns, "echo-v1", map[string]string{"app": "echo", "version": "v1"})
	c.pod(ns, "echo-v2", map[string]string{"app": "echo", "version": "v2"})
	c.createSlice(httpSlice(ns, "echo-1", "echo", 8080, hep{b: v1, pod: "echo-v1", ready: true}, hep{b: v2, pod: "echo-v2", ready: true}))
	c.versionSubsets(ns, "echo")
	_, err := c.istio.NetworkingV1().VirtualServices(ns).Create(c.ctx, weighted(ns, "echo", "echo", 90, 10), metav1.CreateOptions{})
	require.NoError(t, err)

	sc := startSidecar(t, m, ns, "client-0", backendIP(40, 100), map[string]string{"app": "client"})
	url, host := "http://"+vip+":8080/", "echo."+ns+".svc.cluster.local:8080"
	require.Eventually(t, func() bool {
		r := get(url, host)
		return r.Err == nil && r.Status == 200 && r.Backend != ""
	}, 20*time.Second, 50*time.Millisecond, "no request reached a backend through Envoy")
	// Wait until both subsets' endpoints are in Envoy (the split is not
	// measured against a cluster still warming).
	sc.waitStatAbove(t, fmt.Sprintf("outbound|8080|v2|echo.%s.svc.cluster.local.update_success", ns), 0, 15*time.Second)

	// 600 requests per step: at 90/10 the v2 share's σ is 1.2%, at 50/50 2%;
	// the tolerances are over 3.4σ.
	const n = 600
	step := func(w1, w2 int32, tol float64) {
		if w1 != 90 { // the first step is the VirtualService as created
			before := sc.statSum(t, ".rds.8080.update_success")
			cur, err := c.istio.NetworkingV1().VirtualServices(ns).Get(c.ctx, "echo", metav1.GetOptions{})
			require.NoError(t, err)
			cur.Spec.Http[0].Route[0].Weight, cur.Spec.Http[0].Route[1].Weight = w1, w2
			_, err = c.istio.NetworkingV1().VirtualServices(ns).Update(c.ctx, cur, metav1.UpdateOptions{})
			require.NoError(t, err)
			took := sc.waitStatAbove(t, ".rds.8080.update_success", before, 15*time.Second)
			t.Logf("weights %d/%d: VirtualService update → Envoy RDS update_success %v", w1, w2, took.Round(time.Millisecond))
		}
		got := spread(t, n, url, host)
		t.Logf("canary %d/%d over %d requests through Envoy: v1 %d, v2 %d, failed %d (v2 share %.3f, want %.2f ± %.2f)",
			w1, w2, n, got["v1"], got["v2"], got[""], share(got, "v2"), float64(w2)/100, tol)
		assert.Zero(t, got[""], "failed requests at %d/%d", w1, w2)
		assert.InDelta(t, float64(w2)/100, share(got, "v2"), tol, "%d/%d: v2 share", w1, w2)
	}
	step(90, 10, 0.04)
	pushedAsPredicted := whatIfCanary(t, c, m, sc, ns)
	step(50, 50, 0.07)
	pushedAsPredicted()
	step(0, 100, 0)
}

// whatIfCanary asks meshctl what-if about the 50/50 weights before they
// are applied: only route configuration 8080 changes, for the one proxy.
// The function it returns, called once they are applied, checks that this
// proxy's RDS, and nothing else, was pushed.
func whatIfCanary(t *testing.T, c *cluster, m *harness.Meshd, sc *envoySidecar, ns string) func() {
	cur, err := c.istio.NetworkingV1().VirtualServices(ns).Get(c.ctx, "echo", metav1.GetOptions{})
	require.NoError(t, err)
	change := cur.DeepCopy()
	change.APIVersion, change.Kind = "networking.istio.io/v1", "VirtualService"
	change.ManagedFields, change.ResourceVersion, change.UID = nil, "", ""
	change.Spec.Http[0].Route[0].Weight, change.Spec.Http[0].Route[1].Weight = 50, 50
	b, err := yaml.Marshal(change)
	require.NoError(t, err)
	file := writeFile(t, "canary.yaml", b)
	ctl := harness.BuildMeshctl(t)
	addr := strings.TrimPrefix(m.AdminURL, "http://")
	out, stderr, code := harness.RunMeshctl(t, ctl, "what-if", "-f", file, "--meshd-addr", addr)
	require.Equal(t, 1, code, "exit 1: a change; stderr %s\n%s", stderr, out)
	assert.Contains(t, out, "routes: 1 changed (8080)", out)
	assert.Contains(t, out, "1 proxy would be pushed")
	assert.Contains(t, out, sc.NodeID)
	for _, typ := range []string{"listeners", "clusters", "endpoints", "secrets"} {
		assert.NotRegexp(t, `(?m)^  `+typ+`: \d`, out, "only routes change")
	}
	before := proxySyncz(t, m, sc.NodeID)
	return func() {
		after := proxySyncz(t, m, sc.NodeID)
		assert.Equal(t, before["rds"].Responses+1, after["rds"].Responses, "the predicted RDS push happened, once")
		for _, typ := range []string{"cds", "eds", "lds"} {
			assert.Equal(t, before[typ].Responses, after[typ].Responses, "no %s push, as predicted", typ)
		}
	}
}

// TestEnvoyRollingUpdate: backend pods of a Service are replaced one by one,
// 24 times (every pod eight times over), while an application sends 100
// requests per second through its Envoy sidecar. No request may fail. For each removal the time from the
// EndpointSlice write to Envoy's EDS update_success is printed.
func TestEnvoyRollingUpdate(t *testing.T) {
	c := newCluster(t)
	intercept(t)
	m := startMeshd(t, "envoy-roll-system")
	const ns, replicas, rounds = "envoy-roll", 3, 24
	c.namespace(ns, nil)
	vip := c.httpService(ns, "echo", 8080)
	var live []hep
	next := 0
	newPod := func() hep {
		next++
		name := fmt.Sprintf("echo-%d", next)
		return hep{b: harness.StartHTTPBackend(t, name, backendIP(41, next), 8080), pod: name, ready: true}
	}
	for i := 0; i < replicas; i++ {
		live = append(live, newPod())
	}
	c.createSlice(httpSlice(ns, "echo-1", "echo", 8080, live...))
	sc := startSidecar(t, m, ns, "client-0", backendIP(41, 200), map[string]string{"app": "client"})
	url, host := "http://"+vip+":8080/", "echo."+ns+".svc.cluster.local:8080"
	require.Eventually(t, func() bool { return len(spread(t, 30, url, host)) == replicas },
		20*time.Second, 100*time.Millisecond, "Envoy never reached all %d backends", replicas)

	cla := fmt.Sprintf("cluster.outbound|8080||echo.%s.svc.cluster.local.update_success", ns)
	write := func(eps ...hep) time.Duration {
		before := sc.Counter(t, cla)
		c.updateSlice(httpSlice(ns, "echo-1", "echo", 8080, eps...))
		return sc.waitStatAbove(t, cla, before, 15*time.Second)
	}
	load := startHTTPLoad(t, url, host, 10*time.Millisecond)
	began := time.Now()
	var removal []time.Duration
	for r := 0; r < rounds; r++ {
		old := live[0]
		fresh := newPod()
		live = append(live[1:], fresh)
		write(append([]hep{old}, live...)...) // surge: the new pod is ready
		term := old
		term.ready, term.terminating = false, true
		removal = append(removal, write(append([]hep{term}, live...)...))
		require.NotContains(t, sc.Get(t, "/clusters"), old.b.IP+":8080", "Envoy still has the removed endpoint")
		old.b.Shutdown() // the pod exits once Envoy no longer sends it requests
		// The pod object goes: its endpoint leaves the slice. Envoy is sent
		// nothing (a terminating endpoint was already out of the assignment).
		c.updateSlice(httpSlice(ns, "echo-1", "echo", 8080, live...))
	}
	time.Sleep(200 * time.Millisecond)
	load.stop()
	elapsed := time.Since(began)
	sort.Slice(removal, func(i, j int) bool { return removal[i] < removal[j] })
	ok, failed := load.ok.Load(), load.failed.Load()
	rate := float64(ok+failed) / elapsed.Seconds()
	t.Logf("rolling update: %d pods replaced in %v; %d requests through Envoy (%.0f/s), %d failed (first: %s)",
		rounds, elapsed.Round(time.Millisecond), ok+failed, rate, failed, load.firstErr)
	pct := func(p float64) time.Duration { return removal[int(p*float64(len(removal)-1))].Round(time.Millisecond) }
	t.Logf("endpoint removal (EndpointSlice write → Envoy EDS update_success) over %d removals: p50 %v, p90 %v, p99 (the max) %v",
		len(removal), pct(0.5), pct(0.9), pct(1))
	assert.Zero(t, failed, "failed requests during the rolling update (first: %s)", load.firstErr)
	assert.GreaterOrEqual(t, rate, 50.0, "the update ran under at least 50 requests per second")
}
