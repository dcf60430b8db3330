package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
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
