package kube

import (
	"context"
	"crypto/tls"
	"net"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

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

// TestIstioMutualBetweenAgentSidecars: two pilot-agent sidecars, each with
// a workload certificate from meshd's CA, talk Istio mTLS: the client's
// DestinationRule says ISTIO_MUTUAL, and the server's inbound (istiod's
// PERMISSIVE chains, which meshd gives proxies run by the agent)
// terminates it, verifies the client's certificate against the mesh root
// and tells the application who called in x-forwarded-client-cert. A
// PeerAuthentication STRICT then closes the server to plaintext, and
// deleting it opens it again (requireStrictToggles). The client runs in a
// network namespace of its own (its 15001 and 15006); the server's inbound
// traffic is redirected to its 15006 as istio-init does.
func TestIstioMutualBetweenAgentSidecars(t *testing.T) {
	const ns, sys, podIP, appPort = "mtls", "mtls-system", "10.250.63.1", 18080
	// server: the identity the client verifies; tlsMode=istio, as Istio's
	// injector labels a pod with a sidecar (auto mTLS, below).
	es := setUpEcho(t, ns, sys, podIP, appPort, map[string]string{"app": "echo", "security.istio.io/tlsMode": "istio"},
		map[string]int{"client": 5})
	c, app, vip, clientNet := es.c, es.app, es.vip, es.nets["client"]

	am := startAgentMesh(t, c, ns, sys)
	server := am.agent("server", "echo-0", podIP, map[string]string{"app": "echo"}, nil)
	client := am.agent("client", "client-0", "", map[string]string{"app": "client"}, clientNet)

	var r reply
	if !assert.Eventually(t, func() bool {
		r = getVia(clientNet.HTTPClient(), "http://"+vip+":8080/", "echo."+ns+".svc.cluster.local")
		return r.Backend == "echo-0"
	}, 30*time.Second, 100*time.Millisecond, "a request from the client sidecar to the server's") {
		require.FailNowf(t, "no request reached the server", "last reply %+v\nclient: %v\nclient clusters: %s\nserver: %v",
			r, client.StatsMatching(t, "outbound|8080||echo"), client.Get(t, "/clusters"), server.StatsMatching(t, "15006"))
	}
	assert.Contains(t, r.Echo.XFCC, "URI=spiffe://cluster.local/ns/"+ns+"/sa/client",
		"the server's sidecar terminated mTLS and saw the client's workload certificate")
	assert.Equal(t, app.Last().XFCC, r.Echo.XFCC)

	// The mTLS chain requires a client certificate: Istio's ALPN without one
	// is refused in the handshake. Plaintext still reaches the application
	// (istiod's PERMISSIVE default), until a PeerAuthentication says STRICT.
	direct := net.JoinHostPort(podIP, strconv.Itoa(appPort))
	conn, err := clientNet.DialContext(context.Background(), "tcp", direct)
	require.NoError(t, err)
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"istio"}}) //nolint:gosec // the point is the missing client certificate
	hsErr := tc.Handshake()
	if hsErr == nil { // TLS 1.3: the server's refusal arrives with the first read
		_, hsErr = tc.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		if hsErr == nil {
			_, hsErr = tc.Read(make([]byte, 1))
		}
	}
	tc.Close()
	assert.Error(t, hsErr, "an Istio mTLS handshake without a client certificate must fail")
	plain := getVia(clientNet.HTTPClient(), "http://"+direct+"/", "echo")
	assert.Equal(t, "echo-0", plain.Backend, "plaintext to the pod takes the PERMISSIVE plaintext chain")
	assert.Empty(t, plain.Echo.XFCC)
	requireStrictToggles(t, c, ns, clientNet, server, app, vip, direct)

	// Auto mTLS: without the DestinationRule the client still sends Istio
	// mTLS to the server, whose pod says it has a sidecar.
	require.NoError(t, c.istio.NetworkingV1().DestinationRules(ns).Delete(c.ctx, "mtls", metav1.DeleteOptions{}))
	require.Eventually(t, func() bool {
		cl := client.DynamicCluster(t, "outbound|8080||echo."+ns+".svc.cluster.local")
		return cl != nil && cl["transport_socket_matches"] != nil && cl["transport_socket"] == nil
	}, 20*time.Second, 100*time.Millisecond, "the client's cluster has auto mTLS's transport socket matches instead of the rule's socket")
	r = getVia(clientNet.HTTPClient(), "http://"+vip+":8080/", "echo."+ns+".svc.cluster.local")
	assert.Equal(t, "echo-0", r.Backend)
	assert.Contains(t, r.Echo.XFCC, "URI=spiffe://cluster.local/ns/"+ns+"/sa/client", "auto mTLS, no DestinationRule")
	client.RequireNoRejects(t)
	server.RequireNoRejects(t)
}

// agentMesh is meshd with its secure port on every address, for the
// pilot-agent sidecars of one namespace.
type agentMesh struct {
	t       *testing.T
	c       *cluster
	ns, sys string
	port    string // of the secure port
	root    []byte // the mesh root, from istio-ca-root-cert
	meshd   *harness.Meshd
}

// startAgentMesh starts meshd (istio namespace sys) for pilot-agent
// sidecars of ns, with more meshd arguments.
func startAgentMesh(t *testing.T, c *cluster, ns, sys string, meshdArgs ...string) agentMesh {
	m, addr := startSecureMeshdOnAll(t, sys, meshdArgs...)
	_, port, err := net.SplitHostPort(addr)
	require.NoError(t, err)
	return agentMesh{t: t, c: c, ns: ns, sys: sys, port: port, root: c.rootCert(ns), meshd: m}
}

// agent starts a ready pilot-agent sidecar of service account sa for pod
// (ip; "" in a child network namespace n: its address), with a TokenRequest
// token, in the suite's network namespace when n is nil.
func (am agentMesh) agent(sa, pod, ip string, labels map[string]string, n *harness.ChildNet) *harness.PilotAgent {
	return am.agentIn(am.ns, sa, pod, ip, labels, n)
}

// agentIn is agent for a pod of namespace ns (its service account there).
func (am agentMesh) agentIn(ns, sa, pod, ip string, labels map[string]string, n *harness.ChildNet) *harness.PilotAgent {
	xds := "127.0.0.1:" + am.port
	if n != nil {
		xds = net.JoinHostPort(n.HostIP, am.port)
	}
	a := harness.StartPilotAgent(am.t, harness.PilotAgentOptions{
		DiscoveryAddress: xds, RootCert: am.root, ServerName: "istiod." + am.sys + ".svc", Token: am.c.token(ns, sa),
		Namespace: ns, ServiceAccount: sa, PodName: pod, IP: ip, Labels: labels, EnvoyBin: envoyBin, UID: proxyUID, Net: n,
	})
	a.WaitReady(am.t, 60*time.Second)
	return a
}

// startSecureMeshdOnAll is startSecureMeshd with both ADS ports on every
// address, for sidecars in child network namespaces.
func startSecureMeshdOnAll(t *testing.T, istioNS string, args ...string) (*harness.Meshd, string) {
	port := strconv.Itoa(harness.FreePort(t))
	m := startMeshdOnAll(t, istioNS, append([]string{"--secure-xds-address", "0.0.0.0:" + port}, args...)...)
	return m, "127.0.0.1:" + port
}

// redirectInbound sends TCP arriving for ip:port from other network
// namespaces to the suite's 15006, as istio-init's PREROUTING rules do for a
// pod's inbound traffic.
func redirectInbound(t *testing.T, ip string, port int) {
	rule := []string{"-t", "nat", "PREROUTING", "-p", "tcp", "-d", ip, "--dport", strconv.Itoa(port), "-j", "REDIRECT", "--to-ports", "15006"}
	args := append([]string{"-w", rule[0], rule[1], "-I"}, rule[2:]...)
	out, err := exec.Command("iptables", args...).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() {
		_ = exec.Command("iptables", append([]string{"-w", rule[0], rule[1], "-D"}, rule[2:]...)...).Run()
	})
}

// httpServiceTargeting creates a ClusterIP Service with one HTTP port whose
// pods listen on target, and returns its ClusterIP.
func (c *cluster) httpServiceTargeting(ns, name string, port, target int32) string {
	svc, err := c.kube.CoreV1().Services(ns).Create(c.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": name},
			Ports: []corev1.ServicePort{{Name: "http", Port: port, TargetPort: intstr.FromInt32(target)}}},
	}, metav1.CreateOptions{})
	require.NoError(c.t, err)
	return svc.Spec.ClusterIP
}

// istioMutual creates a DestinationRule sending to host with Istio mTLS.
func (c *cluster) istioMutual(ns, host string) {
	dr := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "mtls", Namespace: ns}}
	dr.Spec.Host = host
	dr.Spec.TrafficPolicy = &networking.TrafficPolicy{Tls: &networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_ISTIO_MUTUAL}}
	_, err := c.istio.NetworkingV1().DestinationRules(ns).Create(c.ctx, dr, metav1.CreateOptions{})
	require.NoError(c.t, err)
	// The test API server has no namespace controller: objects of a deleted
	// namespace stay, and this rule (exported everywhere) would make later
	// tests' sidecars without an agent wait for SDS on the host's cluster.
	c.t.Cleanup(func() {
		_ = c.istio.NetworkingV1().DestinationRules(ns).Delete(context.Background(), "mtls", metav1.DeleteOptions{})
	})
}

// echoSetup is what the agent sidecar tests share: namespaces ns and sys,
// the echo Service (port 8080 → appPort) whose pod echo-0 (service account
// server, address podIP, inbound redirected to the suite's 15006 as
// istio-init does) is app, a DestinationRule ISTIO_MUTUAL to it, and one
// child network namespace with interception per client (clients: service
// account → child net index; each service account is created).
type echoSetup struct {
	c    *cluster
	app  *harness.HTTPBackend
	vip  string
	host string
	nets map[string]*harness.ChildNet
}

// setUpEcho builds an echoSetup; podLabels are echo-0's labels.
func setUpEcho(t *testing.T, ns, sys, podIP string, appPort int, podLabels map[string]string, clients map[string]int) echoSetup {
	t.Helper()
	c := newCluster(t)
	requireRealRoot(t)
	requirePortFree(t, 15001, "another sidecar still holds the suite's 15001")
	es := echoSetup{c: c, host: "echo." + ns + ".svc.cluster.local", nets: map[string]*harness.ChildNet{}}
	sas := []string{"server"}
	for sa, idx := range clients {
		n := harness.NewChildNet(t, idx)
		interceptIn(t, n)
		es.nets[sa] = n
		sas = append(sas, sa)
	}
	redirectInbound(t, podIP, appPort)
	c.namespace(sys, nil)
	c.namespace(ns, nil)
	for _, sa := range sas {
		c.serviceAccount(ns, sa)
	}
	es.app = harness.StartHTTPBackend(t, "echo-0", "127.0.0.1", appPort) // what the server's inbound cluster reaches
	es.vip = c.httpServiceTargeting(ns, "echo", 8080, int32(appPort))
	c.podAs(ns, "echo-0", "server", podLabels)
	c.createSlice(endpointSlice(ns, "echo-1", "echo", "http", int32(appPort), []epSpec{{ip: podIP, pod: "echo-0", ready: true}}))
	c.istioMutual(ns, es.host)
	return es
}
