package kube

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/harness"
)

// TestEnvoyNACK: config that passed meshd's validation but that real Envoy
// rejects (a test build of meshd, -tags meshd_faults, serves a route
// configuration with a duplicate virtual-host domain: ValidateAll accepts
// it, Envoy does not). meshd shows the NACK in /debug/syncz and
// pilot_total_xds_rejects, logs the proxy, type and Envoy's error, and does
// not resend the rejected config: Envoy's update attempts and meshd's
// responses stay flat. Envoy keeps its other config.
func TestEnvoyNACK(t *testing.T) {
	c := newCluster(t)
	const ns = "envoy-nack"
	host := "echo." + ns + ".svc.cluster.local"
	m := harness.StartMeshd(t, faultsBin, 60*time.Second,
		[]string{"--kubeconfig", env.Kubeconfig, "--istio-namespace", "envoy-nack-system"},
		"MESHD_FAULT_DUPLICATE_DOMAIN="+host)
	c.namespace(ns, nil)
	c.echoService(ns, 50)
	sc := launchSidecar(t, m, ns, "client-0", backendIP(50, 200), map[string]string{"app": "client"})
	sc.expectRejects = true

	const rejected = ".rds.8080.update_rejected"
	sc.waitStatAbove(t, rejected, 0, 20*time.Second)
	require.Eventually(t, sc.ready, 20*time.Second, 50*time.Millisecond, "Envoy becomes ready with the rest of its config")
	logs := sc.Logs()
	assert.Contains(t, logs, "Only unique values for domains are permitted", "Envoy's own reason")

	// meshd: /debug/syncz, the metric, the log line.
	var nacks int
	var lastNack string
	require.Eventually(t, func() bool {
		r := proxySyncz(t, m, sc.NodeID)["rds"]
		nacks, lastNack = r.Nacks, r.LastNack
		return nacks > 0
	}, 10*time.Second, 50*time.Millisecond, "/debug/syncz shows the NACK")
	t.Logf("syncz rds: nacks %d, lastNack %q", nacks, lastNack)
	assert.Contains(t, lastNack, "Only unique values for domains")
	metrics := httpBody(t, m.AdminURL+"/metrics")
	assert.Regexp(t, `pilot_total_xds_rejects\{type="rds"\} [1-9]`, metrics)
	var line string
	for _, l := range strings.Split(m.Logs(), "\n") {
		if strings.Contains(l, "NACK") && strings.Contains(l, sc.NodeID) {
			line = l
		}
	}
	t.Logf("meshd log: %s", line)
	assert.Contains(t, line, "type=rds")
	assert.Contains(t, line, "Only unique values for domains")

	// Not resent in a loop: for 3 s (30 quiet periods of the debounce)
	// meshd sends the proxy no response of any type, and Envoy sees no
	// further route update.
	before := proxySyncz(t, m, sc.NodeID)
	attempts, rej := sc.statSum(t, ".rds.8080.update_attempt"), sc.statSum(t, rejected)
	require.Positive(t, attempts)
	time.Sleep(3 * time.Second)
	after := proxySyncz(t, m, sc.NodeID)
	for _, typ := range []string{"cds", "eds", "lds", "rds"} {
		assert.Positive(t, before[typ].Responses, "%s was sent", typ)
		assert.Equal(t, before[typ].Responses, after[typ].Responses, "meshd sent no more %s responses", typ)
	}
	assert.Equal(t, attempts, sc.statSum(t, ".rds.8080.update_attempt"), "Envoy saw no more route updates")
	assert.Equal(t, rej, sc.statSum(t, rejected))
	assert.Zero(t, sc.Counter(t, "cluster_manager.cds.update_rejected"), "clusters accepted")
	assert.Zero(t, sc.Counter(t, "listener_manager.lds.update_rejected"), "listeners accepted")

	// meshctl against the Kubernetes-backed meshd sees the same.
	ctl := harness.BuildMeshctl(t)
	addr := strings.TrimPrefix(m.AdminURL, "http://")
	out, stderr, code := harness.RunMeshctl(t, ctl, "proxy-status", "--meshd-addr", addr)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, []string{"-", "SYNCED", "SYNCED", "SYNCED", "NACKED", "NOT SENT", addr, "-"},
		harness.TableRows(out)["client-0."+ns], "meshctl proxy-status:\n%s", out)
	out, stderr, code = harness.RunMeshctl(t, ctl, "proxy-status", "client-0."+ns, "--meshd-addr", addr)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, "Only unique values for domains", "the NACK's message")
	out, stderr, code = harness.RunMeshctl(t, ctl, "proxy-config", "clusters", "client-0."+ns, "--fqdn", host, "--meshd-addr", addr)
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, out, host, "meshctl proxy-config clusters")
}

// typeSync is one xDS type of a proxy in /debug/syncz.
type typeSync struct {
	Responses int    `json:"responses"`
	Nacks     int    `json:"nacks"`
	LastNack  string `json:"lastNack"`
}

// proxySyncz returns a proxy's /debug/syncz row, by type.
func proxySyncz(t *testing.T, m *harness.Meshd, nodeID string) map[string]typeSync {
	var entries []struct {
		Proxy string              `json:"proxy"`
		Types map[string]typeSync `json:"types"`
	}
	m.GetJSON(t, "/debug/syncz", &entries)
	for _, e := range entries {
		if e.Proxy == nodeID {
			return e.Types
		}
	}
	return nil
}
