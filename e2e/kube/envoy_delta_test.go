package kube

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
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
	m1, stop1 := runMeshdAt(t, ns+"-system", xdsPort)
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
	m2, _ := runMeshdAt(t, ns+"-system", xdsPort)
	require.Eventually(t, func() bool { return connectedLine(m2, s.NodeID) != "" }, 60*time.Second, 100*time.Millisecond,
		"Envoy never reconnected to the restarted meshd")
	require.Contains(t, connectedLine(m2, s.NodeID), "delta=true")
	// Envoy subscribes every type again on the new stream; give it the time.
	time.Sleep(3 * time.Second)
	after := s.StatsMatching(t, "update_success")
	assert.Equal(t, before, after, "the restarted meshd must send Envoy nothing it holds")
	for typ, st := range syncTypes(t, m2, s.NodeID) {
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

// syncType is the part of a /debug/syncz type row this test reads.
type syncType struct {
	SentNonce     string `json:"sentNonce"`
	AckedNonce    string `json:"ackedNonce"`
	Responses     int    `json:"responses"`
	SentResources int    `json:"sentResources"`
}

// syncTypes returns the proxy's /debug/syncz rows by short type.
func syncTypes(t *testing.T, m *harness.Meshd, proxy string) map[string]syncType {
	var entries []struct {
		Proxy string              `json:"proxy"`
		Types map[string]syncType `json:"types"`
	}
	m.GetJSON(t, "/debug/syncz", &entries)
	for _, e := range entries {
		if e.Proxy == proxy {
			return e.Types
		}
	}
	return nil
}

// allAcked reports whether every type sent to proxy is acknowledged.
func allAcked(t *testing.T, m *harness.Meshd, proxy string) bool {
	types := syncTypes(t, m, proxy)
	for _, typ := range []string{"lds", "cds", "eds", "rds"} {
		if st := types[typ]; st.SentNonce == "" || st.SentNonce != st.AckedNonce {
			return false
		}
	}
	return true
}

// runMeshdAt runs meshd with ADS on 127.0.0.1:xdsPort (so that a restarted
// meshd is where Envoy's bootstrap points) and waits for /ready. stop ends
// it (SIGTERM) and waits; the test's cleanup calls it too.
func runMeshdAt(t *testing.T, istioNS string, xdsPort int) (*harness.Meshd, func()) {
	t.Helper()
	adminPort := harness.FreePort(t)
	m := &harness.Meshd{XDSAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(xdsPort)),
		AdminURL: "http://127.0.0.1:" + strconv.Itoa(adminPort)}
	cmd := exec.Command(meshdBin, "serve", "--xds-address", m.XDSAddr, "--admin-address", "127.0.0.1:"+strconv.Itoa(adminPort),
		"--secure-xds-address", "off", "--injector-address", "off",
		"--kubeconfig", env.Kubeconfig, "--istio-namespace", istioNS)
	cmd.Stdout, cmd.Stderr = m, m
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			assert.NoError(t, waitErr, "meshd must exit cleanly on SIGTERM")
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Error("meshd did not stop within 10s of SIGTERM")
		}
		if t.Failed() || os.Getenv("MESHD_E2E_LOGS") != "" {
			t.Logf("meshd logs:\n%s", m.Logs())
		}
	}
	t.Cleanup(stop)
	require.Eventually(t, func() bool {
		select {
		case <-done:
			return false
		default:
		}
		return m.Status("/ready") == http.StatusOK
	}, 60*time.Second, 50*time.Millisecond, "meshd never became ready; logs:\n%s", m.Logs())
	return m, stop
}
