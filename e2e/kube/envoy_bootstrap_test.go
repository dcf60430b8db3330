package kube

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/harness"
)

// TestEnvoyBootstrapFlavours: what `meshd bootstrap` prints works against
// meshd in each flavour the other tests do not use: a sidecar over
// state-of-the-world ADS (`--xds-api sotw`) routes requests, and a gateway
// (`--type router`, delta) connects as a router and takes its clusters.
// Each ends with Envoy LIVE and no update rejected.
func TestEnvoyBootstrapFlavours(t *testing.T) {
	const ns = "envoy-flavours"
	_, m, vip := echoMesh(t, ns, 51)

	sotw := startSidecar(t, m, ns, "sotw-0", backendIP(51, 100), map[string]string{"app": "sotw"}, "--xds-api", "sotw")
	require.Eventually(t, func() bool { return get("http://"+vip+":8080/", "echo."+ns).Backend == "echo-0" },
		20*time.Second, 50*time.Millisecond, "a request through the SotW sidecar")
	assert.Contains(t, connectedLine(m, sotw.NodeID), "delta=false", "meshd served it state of the world")
	sotw.stop(t)

	gw := startSidecar(t, m, ns, "ingress-0", backendIP(51, 101), map[string]string{"istio": "ingressgateway"}, "--type", "router")
	line := connectedLine(m, gw.NodeID)
	assert.Contains(t, line, "delta=true", "meshd served the gateway over delta")
	assert.Contains(t, line, `scope="router|`, "as a router")
	assert.NotNil(t, gw.DynamicCluster(t, "outbound|8080||echo."+ns+".svc.cluster.local"), "the gateway has the mesh's clusters")
}

// connectedLine returns meshd's "proxy connected" log line for nodeID.
func connectedLine(m *harness.Meshd, nodeID string) string {
	for _, l := range strings.Split(m.Logs(), "\n") {
		if strings.Contains(l, "proxy connected") && strings.Contains(l, "proxy="+nodeID+" ") {
			return l
		}
	}
	return ""
}
