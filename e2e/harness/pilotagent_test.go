package harness

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/testcerts"
)

// Two real pilot-agents in one network namespace, pointed at a port where
// nothing listens: each starts its Envoy on its own ports, keeps asking the
// CA for a certificate, is not ready, and stops (with its Envoy) on
// SIGTERM. Needs `make envoy pilot-agent`.
func TestPilotAgentWithoutControlPlane(t *testing.T) {
	root := testcerts.NewCA("mesh root", testcerts.Options{})
	addr := "127.0.0.1:" + strconv.Itoa(FreePort(t)) // nothing listens here
	agents := make([]*PilotAgent, 2)
	for i := range agents {
		agents[i] = StartPilotAgent(t, PilotAgentOptions{DiscoveryAddress: addr, RootCert: root.CertPEM,
			Token: "token-" + strconv.Itoa(i), Namespace: "shop", ServiceAccount: "frontend",
			Labels: map[string]string{"app": "frontend"}})
	}
	a := agents[0]
	assert.Equal(t, "sidecar~127.0.0.1~pilot-agent-"+strconv.Itoa(a.AdminPort)+".shop~shop.svc.cluster.local", a.NodeID)
	for _, f := range []string{"var/run/secrets/istio/root-cert.pem", "var/run/secrets/tokens/istio-token",
		"etc/istio/proxy/envoy-rev.json", "etc/istio/proxy/XDS", "var/run/secrets/workload-spiffe-uds/socket"} {
		_, err := os.Stat(filepath.Join(a.Dir, f))
		assert.NoError(t, err, "the agent's working directory must hold %s", f)
	}

	for _, x := range agents {
		require.Eventually(t, func() bool {
			return strings.Contains(x.Logs(), "dial tcp "+addr+": connect: connection refused")
		}, 20*time.Second, 100*time.Millisecond, "the agent must try the CA at %s; logs:\n%s", addr, x.Logs())
		// Envoy waits for its first CDS and LDS: its workers, and so its
		// static listeners (15021, 15090), have not started.
		assert.Zero(t, x.Counter(t, "control_plane.connected_state"))
		assert.Zero(t, x.Counter(t, "listener_manager.workers_started"))
		assert.Zero(t, adminStatus("http://127.0.0.1:"+strconv.Itoa(x.EnvoyStatusPort)+"/healthz/ready"))
		assert.ErrorContains(t, x.ReadyErr(), "503")
	}

	a.Stop()
	require.True(t, a.Exited())
	assert.Contains(t, a.Logs(), "Agent has successfully terminated")
	assert.Zero(t, adminStatus(a.AdminURL+"/server_info"), "Envoy must stop with its agent")
	assert.False(t, agents[1].Exited(), "stopping one agent must leave the other running")
}
