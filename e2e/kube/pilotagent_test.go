package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/xds"
)

// TestPilotAgentSidecar: Istio's own sidecar agent (pilot-agent, built from
// the istio.io/istio module by `make pilot-agent`) runs as a VM-style
// sidecar against meshd's secure port, as it would against istiod's 15012:
// its working directory holds the TokenRequest token and the root from
// istio-ca-root-cert. It gets its workload certificate from meshd's CA, its
// Envoy (bin/envoy) takes config through the agent's xDS proxy without
// rejecting any, and an intercepted request through it reaches the backend.
func TestPilotAgentSidecar(t *testing.T) {
	const ns, sys = "agent", "agent-system"
	c := newCluster(t)
	intercept(t)
	requireRealRoot(t)
	requirePortFree(t, 15001, "another sidecar still holds the suite's 15001")
	c.namespace(sys, nil)
	c.namespace(ns, nil)
	vip, _ := c.echoService(ns, 62)
	c.serviceAccount(ns, "client")
	m, addr := startSecureMeshd(t, sys)

	a := harness.StartPilotAgent(t, harness.PilotAgentOptions{
		DiscoveryAddress: addr, RootCert: c.rootCert(ns), ServerName: "istiod." + sys + ".svc",
		Token: c.token(ns, "client"), Namespace: ns, ServiceAccount: "client", PodName: "client-0",
		IP: backendIP(62, 100), Labels: map[string]string{"app": "client"}, EnvoyBin: envoyBin, UID: proxyUID,
	})
	a.WaitReady(t, 60*time.Second)
	require.Eventually(t, func() bool { return get("http://"+vip+":8080/", "echo."+ns).Backend == "echo-0" },
		20*time.Second, 50*time.Millisecond, "a request through pilot-agent's Envoy; agent logs:\n%s", a.Logs())
	a.RequireNoRejects(t)

	assert.GreaterOrEqual(t, m.Counter(t, "citadel_server_success_cert_issuance_count", nil), 1.0,
		"the agent's workload certificate came from meshd's CA")
	var adsz struct {
		Clients []xds.ProxyStatus `json:"clients"`
	}
	m.GetJSON(t, "/debug/adsz", &adsz)
	require.Len(t, adsz.Clients, 1)
	assert.Equal(t, a.NodeID, adsz.Clients[0].NodeID)
	assert.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/client", adsz.Clients[0].Identity)
	t.Logf("pilot-agent %s connected over %s xDS", a.NodeID, map[bool]string{true: "delta", false: "state-of-the-world"}[adsz.Clients[0].Delta])
}
