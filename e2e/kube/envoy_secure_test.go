package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/xds"
)

// TestEnvoyOverSecurePort: a real Envoy sidecar bootstrapped with `meshd
// bootstrap --tls` (the mesh root from istio-ca-root-cert, a TokenRequest
// token) takes its config over TLS from the secure port, as pilot-agent's
// Envoy would from istiod's 15012, and routes a request; meshd lists it
// with its verified identity.
func TestEnvoyOverSecurePort(t *testing.T) {
	const ns, sys = "envoy-secure", "envoy-secure-system"
	c := newCluster(t)
	intercept(t)
	c.namespace(sys, nil)
	c.namespace(ns, nil)
	vip, _ := c.echoService(ns, 61)
	c.serviceAccount(ns, "client")
	m, addr := startSecureMeshd(t, sys)
	root := writeFile(t, "root-cert.pem", c.rootCert(ns))
	token := writeFile(t, "istio-token", []byte(c.token(ns, "client")))

	s := startSidecar(t, m, ns, "client-0", backendIP(61, 100), map[string]string{"app": "client"},
		"--tls", "--xds-address", addr, "--root-cert", root, "--service-account", "client", "--token-file", token, "--tls-server-name", "istiod."+sys+".svc")
	require.Eventually(t, func() bool { return get("http://"+vip+":8080/", "echo."+ns).Backend == "echo-0" },
		20*time.Second, 50*time.Millisecond, "a request through the Envoy configured over TLS")

	var adsz struct {
		Clients []xds.ProxyStatus `json:"clients"`
	}
	m.GetJSON(t, "/debug/adsz", &adsz)
	require.Len(t, adsz.Clients, 1)
	assert.Equal(t, s.NodeID, adsz.Clients[0].NodeID)
	assert.Equal(t, "spiffe://cluster.local/ns/"+ns+"/sa/client", adsz.Clients[0].Identity, "the stream's verified identity")
	assert.Equal(t, 0.0, m.Counter(t, "meshd_xds_auth_failures_total", map[string]string{"reason": "namespace"}))
}
