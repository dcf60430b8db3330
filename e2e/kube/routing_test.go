package kube

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/harness"
)

// TestServiceBecomesRoutable: a Service and its EndpointSlice created in the
// API server are routable by grpc-go's xDS client, on both backends.
func TestServiceBecomesRoutable(t *testing.T) {
	c := newCluster(t)
	m := startMeshd(t, "routable-system")
	c.namespace("routable", nil)
	c.service("routable", "echo", 7070)
	a := harness.StartBackend(t, "a", backendIP(1, 1), 7070)
	b := harness.StartBackend(t, "b", backendIP(1, 2), 7070)
	c.createSlice(slice("routable", "echo-1", "echo", 7070, ep{b: a, ready: true}, ep{b: b, ready: true}))

	conn := harness.DialXDS(t, m.XDSAddr, nodeID("client", "routable"), "routable", "xds:///echo.routable.svc.cluster.local:7070")
	var got map[string]int
	require.Eventually(t, func() bool {
		got = map[string]int{}
		for i := 0; i < 20; i++ {
			name, err := harness.Call(context.Background(), conn)
			if err != nil {
				return false
			}
			got[name]++
		}
		return got["a"] > 0 && got["b"] > 0
	}, 20*time.Second, 100*time.Millisecond, "RPCs must reach both backends on 10.250.1.x (last: %v)", got)
	t.Logf("calls per backend: %v", got)
	assert.True(t, registryHas(t, m, "echo.routable.svc.cluster.local"))
}

// TestRollingUpdateZeroFailures plays a rolling update as Kubernetes does it
// — new endpoints added ready, old ones marked terminating, their pods shut
// down gracefully, then removed — under a steady stream of RPCs. No RPC may
// fail; the time from each EndpointSlice write to the client's ACK is printed.
func TestRollingUpdateZeroFailures(t *testing.T) {
	c := newCluster(t)
	m := startMeshd(t, "rolling-system")
	c.namespace("rolling", nil)
	c.service("rolling", "echo", 7070)
	old := []*harness.Backend{harness.StartBackend(t, "old-1", backendIP(2, 1), 7070), harness.StartBackend(t, "old-2", backendIP(2, 2), 7070)}
	next := []*harness.Backend{harness.StartBackend(t, "new-1", backendIP(2, 3), 7070), harness.StartBackend(t, "new-2", backendIP(2, 4), 7070)}
	s := slice("rolling", "echo-1", "echo", 7070, ep{b: old[0], ready: true}, ep{b: old[1], ready: true})
	c.createSlice(s)

	node := nodeID("client", "rolling")
	conn := harness.DialXDS(t, m.XDSAddr, node, "rolling", "xds:///echo.rolling.svc.cluster.local:7070")
	harness.Spread(t, conn, 20) // connected and served before the update starts
	load := harness.StartLoad(conn, 2*time.Millisecond)
	defer load.Stop()

	step := func(what string, eps ...ep) {
		eds := m.Acked(t, node, "eds")
		began := time.Now()
		c.updateSlice(slice("rolling", "echo-1", "echo", 7070, eps...))
		m.WaitNewAck(t, node, "eds", eds, 15*time.Second)
		t.Logf("%-38s EndpointSlice update → client ACK: %v", what+":", time.Since(began).Round(time.Millisecond))
		time.Sleep(100 * time.Millisecond) // the balancer applies the update right after the ACK
	}
	step("new endpoints added ready",
		ep{b: old[0], ready: true}, ep{b: old[1], ready: true}, ep{b: next[0], ready: true}, ep{b: next[1], ready: true})
	step("old endpoints terminating",
		ep{b: old[0], terminating: true}, ep{b: old[1], terminating: true}, ep{b: next[0], ready: true}, ep{b: next[1], ready: true})
	before := load.Counts()
	for _, b := range old {
		b.GracefulStop() // the old pods exit
	}
	// Removing endpoints that are already out of service changes no
	// ClusterLoadAssignment: meshd must send the client nothing.
	eds := m.Acked(t, node, "eds")
	c.updateSlice(slice("rolling", "echo-1", "echo", 7070, ep{b: next[0], ready: true}, ep{b: next[1], ready: true}))
	time.Sleep(time.Second)
	assert.Equal(t, eds, m.Acked(t, node, "eds"), "removing terminated endpoints is not a new ClusterLoadAssignment")
	load.Stop()

	after := load.Counts()
	t.Logf("RPCs: %d, failed: %d, per backend: %v", load.Total.Load(), load.Failed.Load(), after)
	assert.Zero(t, load.Failed.Load(), "no RPC may fail during a rolling update (first error: %s)", load.FirstError())
	assert.Equal(t, before["old-1"], after["old-1"], "no RPC reaches a terminating endpoint")
	assert.Equal(t, before["old-2"], after["old-2"], "no RPC reaches a terminating endpoint")
	assert.Positive(t, after["new-1"]+after["new-2"])
}
