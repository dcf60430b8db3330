package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/hack/loadgen/fleet"
)

func TestResolveProtocols(t *testing.T) {
	for _, tc := range []struct {
		name            string
		list            string
		explicit        bool
		delta, sotw     bool
		want            []string
		wantErrContains string
	}{
		{name: "default: both, delta first", list: "delta,sotw", want: []string{"delta", "sotw"}},
		{name: "--sotw", list: "delta,sotw", sotw: true, want: []string{"sotw"}},
		{name: "--delta (kept)", list: "delta,sotw", delta: true, want: []string{"delta"}},
		{name: "--delta --sotw", list: "delta,sotw", delta: true, sotw: true, want: []string{"delta", "sotw"}},
		{name: "order kept, repeats dropped", list: "sotw, Delta,sotw", explicit: true, want: []string{"sotw", "delta"}},
		{name: "shorthand and list", list: "sotw", explicit: true, sotw: true, wantErrContains: "shorthands"},
		{name: "unknown", list: "delta,xds", explicit: true, wantErrContains: `unknown "xds"`},
		{name: "empty", list: ",", explicit: true, wantErrContains: "none given"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveProtocols(tc.list, tc.explicit, tc.delta, tc.sotw)
			if tc.wantErrContains != "" {
				require.ErrorContains(t, err, tc.wantErrContains)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestResolveScenarios(t *testing.T) {
	got, err := resolveScenarios("", false)
	require.NoError(t, err)
	assert.Equal(t, []string{"unscoped"}, got)
	got, err = resolveScenarios("", true)
	require.NoError(t, err)
	assert.Equal(t, []string{"unscoped", "scoped"}, got, "--sidecar-scope: beside the unscoped one")
	got, err = resolveScenarios("scoped", false)
	require.NoError(t, err)
	assert.Equal(t, []string{"scoped"}, got)
	got, err = resolveScenarios("unscoped", true)
	require.NoError(t, err)
	assert.Equal(t, []string{"unscoped", "scoped"}, got)
	_, err = resolveScenarios("sidecar", false)
	assert.ErrorContains(t, err, "--scenarios")
}

func TestFitStreams(t *testing.T) {
	n, why := fitStreams(2000, 1, 20000)
	assert.Equal(t, 1, n)
	assert.Empty(t, why, "2,000 connections fit in 20,000 descriptors")
	n, why = fitStreams(5000, 1, 0)
	assert.Equal(t, 1, n, "unknown limit: as asked")
	assert.Empty(t, why)
	n, why = fitStreams(5000, 1, 1024)
	assert.Equal(t, 10, n, "512 descriptors left for 5,000 streams")
	assert.Contains(t, why, "10 streams per connection (500 connections)")
	n, _ = fitStreams(5000, 20, 1024)
	assert.Equal(t, 20, n, "already few enough connections")
	n, _ = fitStreams(10, 0, 100)
	assert.Equal(t, 10, n, "a single connection when nothing is left")
}

func TestSpread(t *testing.T) {
	assert.Equal(t, "—", spread(nil, "%.0f"))
	assert.Equal(t, "42", spread([]float64{42}, "%.0f"))
	assert.Equal(t, "42", spread([]float64{42.2, 41.9}, "%.0f"), "equal once formatted")
	assert.Equal(t, "0.9–1.3", spread([]float64{1.3, 0.9, 1.1}, "%.1f"))
}

func TestMultiplexingStatement(t *testing.T) {
	assert.Contains(t, multiplexing(2000, 1, ""), "One gRPC connection per proxy (as Envoy): 2000 connections")
	assert.Contains(t, multiplexing(5000, 100, ""), "**Streams multiplexed**: 100 ADS streams per gRPC connection")
	assert.Contains(t, multiplexing(5000, 10, "over the limit"), "**Streams multiplexed**: over the limit.")
}

// fakeRun is a run with the figures the summary reads.
func fakeRun(proto string, scopedRun bool, run int, stormMax, churnP99, canaryP99, peak float64, pushed []int, rec *Reconnect) *Result {
	r := &Result{Run: run, Reconnect: rec}
	r.Scale.Protocol, r.Scale.Scoped, r.Scale.Proxies = proto, scopedRun, 100
	r.Storm = Storm{Proxies: 100, Configured: 100, Streams: 100, Latency: Latency{P99Ms: stormMax - 100, MaxMs: stormMax}}
	r.Churn.Latency.P99Ms = churnP99
	r.Canary = Change{Rounds: 1, Watching: 100, Latency: Latency{P99Ms: canaryP99}, PushedProxies: pushed}
	if scopedRun {
		r.Canary.Watching = 20
	}
	r.Memory.PeakMB = peak
	return r
}

// TestSummarySideBySide: both protocols and both scenarios in columns,
// ranges over runs, the scoped rows only under the scoped scenario, the
// reconnection's bytes, and every run's own table below.
func TestSummarySideBySide(t *testing.T) {
	c := config{services: 50, endpoints: 500, proxies: 100, namespaces: 5, labels: true, perConn: 1, rounds: 1, runs: 2,
		protocols: []string{"delta", "sotw"}, scenarios: []string{"unscoped", "scoped"}, meshdBin: "/nonexistent"}
	s := newSummary(c)
	rec := func(b int) *Reconnect {
		return &Reconnect{Resumed: fleet.Resumed{Proxies: 100, Reconnected: 100, Streams: 100,
			Bytes: map[string]int{"rds": b}, Resources: map[string]int{"rds": b / 1024}, Responses: map[string]int{"rds": 100},
			Presented: map[string]int{"cds": 5000}}}
	}
	s.add(fakeRun("delta", false, 1, 1200, 40, 150, 200, []int{100}, rec(0)))
	s.add(fakeRun("sotw", false, 1, 1100, 30, 120, 180, []int{100}, rec(512000)))
	s.add(fakeRun("delta", false, 2, 1500, 45, 160, 210, []int{100}, rec(0)))
	s.add(fakeRun("sotw", false, 2, 1000, 35, 110, 190, []int{100}, rec(512000)))
	s.add(fakeRun("delta", true, 1, 900, 20, 60, 150, []int{20}, nil))
	md := s.markdownLocked()

	assert.Contains(t, md, "| measure | target | delta (2 runs) | state of the world (2 runs) | delta, Sidecar-scoped (1 runs) | state of the world, Sidecar-scoped (0 runs) |")
	assert.Contains(t, md, "| connect storm: configured after, max (s) | ≤ 5 s | 1.20–1.50 | 1.00–1.10 | 0.90 | — |")
	assert.Contains(t, md, "| endpoint churn: API write → ACK, p99 (ms) | ≤ 100 ms | 40–45 | 30–35 | 20 | — |")
	assert.Contains(t, md, "| canary: API write → ACK, p99 (ms) | ≤ 300 ms | 150–160 | 110–120 | — | — |")
	assert.Contains(t, md, "| scoped VirtualService change: write → ACK p99 on the proxies that see it (ms) | ≤ 100 ms | — | — | 60 | — |")
	assert.Contains(t, md, "| scoped VirtualService change: proxies that see its host |  | — | — | 20 | — |")
	assert.Contains(t, md, "| scoped VirtualService change: proxies pushed anything, per round (most) | = those that see it | — | — | 20 | — |")
	assert.Contains(t, md, "| meshd RSS: peak (MB) | ≤ 300 MB | 200–210 | 180–190 | 150 | — |")
	assert.Contains(t, md, "| reconnect to a restarted meshd: bytes sent to all proxies (KB) | ≈ 0 beyond response heads | 0.0 | 500.0 | — | — |")
	assert.Contains(t, md, "- state of the world: cds 0 / 0.0 KB / 0 (presented 5000); eds 0 / 0.0 KB / 0 (presented 0); lds 0 / 0.0 KB / 0 (presented 0); rds 500 / 500.0 KB / 100 (presented 0).")
	assert.Contains(t, md, "One gRPC connection per proxy (as Envoy): 100 connections, no multiplexing.")
	assert.Contains(t, md, "Ranges are min–max over the runs")
	assert.Equal(t, 5, strings.Count(md, "\n### meshd: "), "every run's own table")
	assert.Contains(t, md, "delta, every namespace with a Sidecar (./*, istio-system/*), run 1")
	assert.Contains(t, md, "| scoped VirtualService change: API write → ACK by the proxies that see its host |")

	big := newSummary(config{proxies: 5000, perConn: 1, protocols: []string{"delta"}, scenarios: []string{"unscoped"}, meshdBin: "/nonexistent"})
	big.add(fakeRun("delta", false, 1, 1, 1, 1, 500, []int{1}, nil))
	assert.Contains(t, big.markdownLocked(), "| meshd RSS: peak (MB) | ≤ 600 MB | 500 |")
}

// TestScopedMesh: with Sidecars (./*), the canary's split stays in its
// namespace, which the namespace's proxies see; unscoped, it goes to the
// next service as before. Churn and canary rounds always change something.
func TestScopedMesh(t *testing.T) {
	m := &mesh{services: 100, endpoints: 1000, namespaces: 10}
	assert.Equal(t, 1, m.splitTo(0))
	m.scoped = true
	for i := range m.services {
		assert.Equal(t, m.namespace(i), m.namespace(m.splitTo(i)), "svc-%d", i)
		assert.NotEqual(t, i, m.splitTo(i))
	}
	prev, prevSvc := int32(90), -1
	for range 20 {
		w := m.nextWeight()
		assert.NotEqual(t, prev, w)
		prev = w
		svc := m.churned()
		assert.NotEqual(t, prevSvc, svc)
		prevSvc = svc
		m.nextChurn()
	}
}
