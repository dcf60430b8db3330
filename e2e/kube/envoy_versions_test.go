package kube

import (
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
)

// TestEnvoyReconnectToRestartedMeshdGetsNothing: versions are content
// hashes for every type, EDS over state of the world included, so a real
// Envoy (SotW ADS) that reconnects to a restarted meshd with what it holds
// is sent nothing: the new process counts no response to it, and Envoy
// applies no assignment again. A later endpoint change is then sent as
// the one changed assignment.
func TestEnvoyReconnectToRestartedMeshdGetsNothing(t *testing.T) {
	const ns = "envoy-versions"
	c := newCluster(t)
	intercept(t)
	c.namespace(ns, nil)
	vip, _ := c.echoService(ns, 57)
	// Kept to its namespace, the sidecar sees nothing the suite's other
	// tests change meanwhile.
	_, err := c.istio.NetworkingV1().Sidecars(ns).Create(c.ctx, &networkingv1.Sidecar{
		ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns},
		Spec:       networking.Sidecar{Egress: []*networking.IstioEgressListener{{Hosts: []string{"./*"}}}},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	xdsPort, adminPort := harness.FreePort(t), harness.FreePort(t)
	m1, stop1 := startMeshdAt(t, ns+"-system", xdsPort, adminPort)

	e := startSidecar(t, m1, ns, "v-0", backendIP(57, 100), map[string]string{"app": "versions"}, "--xds-api", "sotw")
	require.Eventually(t, func() bool { return get("http://"+vip+":8080/", "echo."+ns).Backend == "echo-0" },
		20*time.Second, 50*time.Millisecond, "a request through the SotW sidecar")
	edsV := m1.Acked(t, e.NodeID, "eds")
	require.NotEmpty(t, edsV)
	assert.Regexp(t, `^eds-[0-9a-f]{16}$`, edsV, "a content hash, not a per-process generation")
	before := edsUpdates(t, e)
	require.NotEmpty(t, before, "Envoy's EDS clusters count their updates")

	stop1()
	m2, _ := startMeshdAt(t, ns+"-system", xdsPort, adminPort)
	var proxy syncRow
	require.Eventually(t, func() bool {
		var ok bool
		proxy, ok = syncRowOf(t, m2, e.NodeID)
		return ok // connected: listed even when it was sent nothing
	}, 30*time.Second, 50*time.Millisecond, "Envoy never reconnected to the restarted meshd")
	time.Sleep(2 * time.Second) // what would be sent is sent at once
	proxy, _ = syncRowOf(t, m2, e.NodeID)
	t.Logf("after the restart, meshd sent Envoy: %+v", proxy.Types)
	for typ, ts := range proxy.Types {
		assert.Zero(t, ts.Responses, "%s: Envoy reconnected with what it holds: nothing may be sent", typ)
	}
	assert.Equal(t, before, edsUpdates(t, e), "no assignment applied again")
	e.RequireNoRejects(t)

	// A new endpoint: the one changed assignment, acknowledged.
	b2 := harness.StartHTTPBackend(t, "echo-1", backendIP(57, 2), 8080)
	c.updateSlice(httpSlice(ns, "echo-1", "echo", 8080, hep{b: b2, ready: true}))
	v2, _ := m2.WaitNewAck(t, e.NodeID, "eds", "", 20*time.Second)
	assert.NotEqual(t, edsV, v2)
	proxy, _ = syncRowOf(t, m2, e.NodeID)
	assert.Equal(t, 1, proxy.Types["eds"].Responses)
	assert.Equal(t, 1, proxy.Types["eds"].SentResources, "only the changed assignment")
	require.Eventually(t, func() bool { return get("http://"+vip+":8080/", "echo."+ns).Backend == "echo-1" },
		20*time.Second, 50*time.Millisecond, "the new endpoint serves")
	e.RequireNoRejects(t)
}

// syncRow is one proxy of /debug/syncz with the response counts.
type syncRow struct {
	Proxy string `json:"proxy"`
	Types map[string]struct {
		Responses     int    `json:"responses"`
		SentResources int    `json:"sentResources"`
		AckedVersion  string `json:"ackedVersion"`
		SentNonce     string `json:"sentNonce"`
		AckedNonce    string `json:"ackedNonce"`
	} `json:"types"`
}

// syncRowOf returns proxy's row of m's /debug/syncz.
func syncRowOf(t *testing.T, m *harness.Meshd, proxy string) (syncRow, bool) {
	var rows []syncRow
	m.GetJSON(t, "/debug/syncz", &rows)
	for _, r := range rows {
		if r.Proxy == proxy {
			return r, true
		}
	}
	return syncRow{}, false
}

// edsUpdates returns Envoy's update_success counters of its EDS clusters.
func edsUpdates(t *testing.T, e *envoySidecar) map[string]uint64 {
	out := map[string]uint64{}
	for name, v := range e.StatsMatching(t, "update_success") {
		if strings.HasPrefix(name, "cluster.outbound|") && strings.HasSuffix(name, ".update_success") {
			out[name] = v
		}
	}
	return out
}

// startMeshdAt runs meshd against the test API server on fixed ports (so
// that a second one can take the first one's place), waits for /ready,
// and returns it with a function that stops it (SIGTERM; also at cleanup).
func startMeshdAt(t *testing.T, istioNS string, xdsPort, adminPort int) (*harness.Meshd, func()) {
	t.Helper()
	m := &harness.Meshd{XDSAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(xdsPort)),
		AdminURL: "http://127.0.0.1:" + strconv.Itoa(adminPort)}
	cmd := exec.Command(meshdBin, "serve", "--kubeconfig", env.Kubeconfig, "--istio-namespace", istioNS,
		"--xds-address", m.XDSAddr, "--admin-address", "127.0.0.1:"+strconv.Itoa(adminPort),
		"--secure-xds-address", "off", "--injector-address", "off")
	cmd.Stdout, cmd.Stderr = m, m
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Error("meshd did not stop within 10s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("meshd (%s) logs:\n%s", m.XDSAddr, m.Logs())
		}
	}
	t.Cleanup(stop)
	require.Eventually(t, func() bool {
		select {
		case <-done:
			return false
		default:
		}
		return m.Status("/ready") == 200
	}, 60*time.Second, 50*time.Millisecond, "meshd never became ready; logs:\n%s", m.Logs())
	return m, stop
}
