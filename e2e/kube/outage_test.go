package kube

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/harness"
)

// TestAPIServerOutage stops the API server for 30 s under load: RPCs keep
// succeeding, meshd stays ready and sends no proxy anything (so nothing empty
// or shrunken); once the API server is back, a change is picked up.
func TestAPIServerOutage(t *testing.T) {
	c := newCluster(t)
	m := startMeshd(t, "outage-system")
	c.namespace("outage", nil)
	c.service("outage", "echo", 7070)
	a := harness.StartBackend(t, "a", backendIP(5, 1), 7070)
	b := harness.StartBackend(t, "b", backendIP(5, 2), 7070)
	c.createSlice(slice("outage", "echo-1", "echo", 7070, ep{b: a, ready: true}))

	node := nodeID("client", "outage")
	conn := harness.DialXDS(t, m.XDSAddr, node, "outage", "xds:///echo.outage.svc.cluster.local:7070")
	require.Eventually(t, func() bool { _, err := harness.Call(context.Background(), conn); return err == nil },
		20*time.Second, 100*time.Millisecond)
	types := []string{"lds", "rds", "cds", "eds"}
	before := map[string]string{}
	for _, typ := range types {
		before[typ] = m.Acked(t, node, typ)
		require.NotEmpty(t, before[typ], "%s must be ACKed before the outage", typ)
	}
	load := harness.StartLoad(conn, 5*time.Millisecond)
	defer load.Stop()

	require.NoError(t, env.StopAPIServer())
	restarted := false
	defer func() {
		if !restarted { // leave a working API server to the next test
			_ = env.StartAPIServer(context.Background())
		}
	}()
	const outage = 30 * time.Second
	t.Logf("API server stopped for %v", outage)
	for deadline := time.Now().Add(outage); time.Now().Before(deadline); time.Sleep(time.Second) {
		require.Equal(t, http.StatusOK, m.Status("/ready"), "meshd must stay ready without the API server")
		for _, typ := range types {
			require.Equal(t, before[typ], m.Acked(t, node, typ), "%s: nothing may be pushed while the API server is away", typ)
		}
	}
	require.NoError(t, env.StartAPIServer(context.Background()))
	restarted = true
	t.Logf("API server back; RPCs during the outage: %d, failed: %d", load.Total.Load(), load.Failed.Load())
	assert.Zero(t, load.Failed.Load(), "RPCs must keep succeeding (first error: %s)", load.FirstError())

	// A change made as soon as the API server is back reaches the proxy
	// once meshd's watches have reconnected (client-go backs off up to 30 s).
	began := time.Now()
	c.updateSlice(slice("outage", "echo-1", "echo", 7070, ep{b: a, ready: true}, ep{b: b, ready: true}))
	m.WaitNewAck(t, node, "eds", before["eds"], 90*time.Second)
	t.Logf("change after the outage ACKed %v after the write", time.Since(began).Round(time.Millisecond))
	require.Eventually(t, func() bool { return harness.Spread(t, conn, 20)["b"] > 0 },
		10*time.Second, 100*time.Millisecond, "the new endpoint must receive traffic")
	for _, typ := range []string{"lds", "rds", "cds"} {
		assert.Equal(t, before[typ], m.Acked(t, node, typ), "%s must not change: the relist after the outage is not a config change", typ)
	}
}
