package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestWorkloadOf: every proxy backs a service of its own namespace, and
// the proxies are spread evenly over all services.
func TestWorkloadOf(t *testing.T) {
	m := &mesh{services: 500, endpoints: 5000, namespaces: 10}
	per := map[int]int{}
	for i := range 1000 {
		svc := workloadOf(m, i)
		assert.Equal(t, m.namespace(i), m.namespace(svc), "proxy %d", i)
		per[svc]++
	}
	assert.Len(t, per, 500)
	for svc, n := range per {
		assert.Equal(t, 2, n, "svc-%d", svc)
	}
	odd := &mesh{services: 7, endpoints: 7, namespaces: 3}
	for i := range 30 {
		assert.Equal(t, odd.namespace(i), odd.namespace(workloadOf(odd, i)))
	}
}

// TestEndpoints: E endpoints are spread over the services with distinct
// addresses, and a rolling-update generation gets a fresh one.
func TestEndpoints(t *testing.T) {
	m := &mesh{services: 30, endpoints: 100, namespaces: 2}
	seen := map[string]bool{}
	total := 0
	for i := range m.services {
		s := m.slice(i, 0)
		total += len(s.Endpoints)
		for _, e := range s.Endpoints {
			assert.False(t, seen[e.Addresses[0]], e.Addresses[0])
			seen[e.Addresses[0]] = true
		}
	}
	assert.Equal(t, 100, total)
	rolled := m.slice(3, 1)
	assert.False(t, seen[rolled.Endpoints[0].Addresses[0]])
	assert.Equal(t, m.slice(3, 0).Endpoints[1:], rolled.Endpoints[1:])
	assert.Equal(t, "10.251.0.1", address(0))
	assert.Equal(t, "10.252.0.0", address(65535))
}

// TestCanaryWeightChangesEveryRound: any number of rounds, every round's
// weight is a valid one that differs from the one before (a repeated
// weight pushes nothing, and the round would wait for ACKs in vain).
func TestCanaryWeightChangesEveryRound(t *testing.T) {
	prev := int32(90) // createRouting's
	for r := range 50 {
		w := canaryWeight(r)
		if w < 0 || w > 100 || w == prev {
			t.Fatalf("round %d: weight %d after %d", r, w, prev)
		}
		prev = w
	}
}

func TestRoundTimeline(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	c := newChange()
	c.Rounds = 2
	c.began = []time.Time{t0, t0.Add(time.Minute)}
	c.acks = [][]time.Duration{
		{8 * time.Millisecond, 15 * time.Millisecond, 17 * time.Millisecond, 42 * time.Millisecond},
		nil, // nobody ACKed
	}
	c.Pushes = []PushStatus{
		{Started: t0.Add(5 * time.Millisecond), DurationNanos: int64(7 * time.Millisecond)},
		{Started: t0.Add(-time.Second)}, // an earlier push: meshd did not push for this round
	}
	c.perRound()
	require.Len(t, c.Timeline, 2)
	got := c.Timeline[0]
	require.Equal(t, t0, got.At)
	require.Equal(t, 5.0, got.PushStartMs)
	require.Equal(t, 12.0, got.PushEndMs)
	require.Equal(t, []float64{8, 17, 42}, []float64{got.FirstAckMs, got.HalfAckMs, got.LastAckMs})
	require.Equal(t, []int{1, 2, 0, 0, 1}, got.AckedPer10Ms)
	require.Equal(t, RoundTimeline{At: t0.Add(time.Minute)}, c.Timeline[1])

	// An ACK timed before the write (the probe counts none) is no crash.
	c = newChange()
	c.Rounds, c.began, c.acks = 1, []time.Time{t0}, [][]time.Duration{{-15 * time.Millisecond}}
	c.perRound()
	require.Equal(t, []int{1}, c.Timeline[0].AckedPer10Ms)
}
