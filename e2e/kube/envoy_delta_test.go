package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
)

// TestEnvoyDeltaRestartSendsNothingHeld: a real Envoy sidecar on delta
// xDS (meshd bootstrap's default) stays up while meshd is restarted on the
// same address with the same config. Envoy reconnects with the versions it
// holds (initial_resource_versions); versions are content hashes, so the
// new meshd sends it no resource at all: no type's update_success moves,
// and the new meshd's /debug/syncz records no response. A Service deleted
// afterwards reaches Envoy as a removal (removed_resources): its cluster
// leaves Envoy, and traffic keeps flowing. update_rejected stays 0.
func TestEnvoyDeltaRestartSendsNothingHeld(t *testing.T) {
	const ns = "envoy-delta"
	c := newCluster(t)
	intercept(t)
	xdsPort := harness.FreePort(t)
	m1, stop1 := startMeshdAt(t, ns+"-system", xdsPort, harness.FreePort(t))
	c.namespace(ns, nil)
	vip, _ := c.echoService(ns, 52)
	c.httpService(ns, "extra", 8080)
	extra := "outbound|8080||extra." + ns + ".svc.cluster.local"

	s := startSidecar(t, m1, ns, "delta-0", backendIP(52, 100), map[string]string{"app": "delta"})
	require.Contains(t, connectedLine(m1, s.NodeID), "delta=true", "meshd bootstrap's default is delta")
	require.Eventually(t, func() bool { return get("http://"+vip+":8080/", "echo."+ns).Backend == "echo-0" },
		20*time.Second, 50*time.Millisecond, "a request through the sidecar")
	require.Eventually(t, func() bool { return s.DynamicCluster(t, extra) != nil }, 20*time.Second, 50*time.Millisecond)
	// Settled: every type ACKed and nothing more arriving.
	var before map[string]uint64
	require.Eventually(t, func() bool {
		now := s.StatsMatching(t, "update_success")
		same := before != nil && equalStats(before, now)
		before = now
		return same && allAcked(t, m1, s.NodeID)
	}, 30*time.Second, time.Second, "Envoy never settled")
	t.Logf("before the restart: %v", before)

	stop1()
	m2, _ := startMeshdAt(t, ns+"-system", xdsPort, harness.FreePort(t))
	require.Eventually(t, func() bool { return connectedLine(m2, s.NodeID) != "" }, 60*time.Second, 100*time.Millisecond,
		"Envoy never reconnected to the restarted meshd")
	require.Contains(t, connectedLine(m2, s.NodeID), "delta=true")
	// Envoy subscribes every type again on the new stream; give it the time.
	time.Sleep(3 * time.Second)
	after := s.StatsMatching(t, "update_success")
	assert.Equal(t, before, after, "the restarted meshd must send Envoy nothing it holds")
	row, _ := syncRowOf(t, m2, s.NodeID)
	for typ, st := range row.Types {
		assert.Zero(t, st.Responses, "%s: responses sent after the restart (%d resources)", typ, st.SentResources)
	}
	require.Eventually(t, func() bool { return get("http://"+vip+":8080/", "echo."+ns).Backend == "echo-0" },
		10*time.Second, 50*time.Millisecond, "traffic after the restart")

	// A removal reaches Envoy.
	cdsBefore := s.Counter(t, "cluster_manager.cds.update_success")
	require.NoError(t, c.kube.CoreV1().Services(ns).Delete(c.ctx, "extra", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool { return s.DynamicCluster(t, extra) == nil }, 20*time.Second, 50*time.Millisecond,
		"the deleted Service's cluster must leave Envoy")
	assert.Greater(t, s.Counter(t, "cluster_manager.cds.update_success"), cdsBefore)
	assert.Equal(t, "echo-0", get("http://"+vip+":8080/", "echo."+ns).Backend)
	s.RequireNoRejects(t)
}

func equalStats(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// allAcked reports whether every type sent to proxy is acknowledged.
func allAcked(t *testing.T, m *harness.Meshd, proxy string) bool {
	row, _ := syncRowOf(t, m, proxy)
	types := row.Types
	for _, typ := range []string{"lds", "cds", "eds", "rds"} {
		if st := types[typ]; st.SentNonce == "" || st.SentNonce != st.AckedNonce {
			return false
		}
	}
	return true
}
