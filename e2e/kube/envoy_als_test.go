package kube

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/service/accesslog/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/internal/model"
)

// alsCollector is a real gRPC access-log service (Envoy's ALS v3): it
// records the paths of the HTTP entries it receives.
type alsCollector struct {
	accesslogv3.UnimplementedAccessLogServiceServer
	mu    sync.Mutex
	paths []string
	logs  map[string]bool // log names seen
}

// StreamAccessLogs receives one Envoy's stream of entries.
func (a *alsCollector) StreamAccessLogs(stream accesslogv3.AccessLogService_StreamAccessLogsServer) error {
	for {
		msg, err := stream.Recv()
		if err != nil {
			return nil
		}
		a.mu.Lock()
		if id := msg.GetIdentifier(); id != nil {
			a.logs[id.GetLogName()] = true
		}
		for _, e := range msg.GetHttpLogs().GetLogEntry() {
			a.paths = append(a.paths, e.GetRequest().GetPath())
		}
		a.mu.Unlock()
	}
}

// received returns the paths logged so far.
func (a *alsCollector) received() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.paths...)
}

func startCollector(t *testing.T, ip string, port int) *alsCollector {
	lis, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	require.NoError(t, err)
	a := &alsCollector{logs: map[string]bool{}}
	srv := grpc.NewServer()
	accesslogv3.RegisterAccessLogServiceServer(srv, a)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return a
}

// TestEnvoyAccessLogService replays the bank's outage on real Envoy: ALS is
// turned on in MeshConfig while the collector's Service does not exist yet.
// meshd reports the MeshConfig error and pushes nothing broken (Envoy
// rejects nothing and keeps serving traffic); once the collector appears,
// access-log entries flow to it.
func TestEnvoyAccessLogService(t *testing.T) {
	c := newCluster(t)
	intercept(t)
	const istioNS, ns, tel = "envoy-als-system", "envoy-als", "envoy-als-tel"
	c.namespace(istioNS, nil)
	c.meshConfigMap(istioNS, `
defaultProviders:
  accessLogging: [bank-als]
extensionProviders:
- name: bank-als
  envoyHttpAls: {service: collector.envoy-als-tel.svc.cluster.local, port: 9000, logName: bank}
`)
	m := startMeshd(t, istioNS)
	c.namespace(ns, nil)
	vip, _ := c.echoService(ns, 44)
	sc := startSidecar(t, m, ns, "client-0", backendIP(44, 200), map[string]string{"app": "client"})
	url, host := "http://"+vip+":8080/before", "echo."+ns+".svc.cluster.local:8080"
	require.Eventually(t, func() bool { return get(url, host).Backend == "echo-0" }, 20*time.Second, 50*time.Millisecond,
		"traffic must flow while the collector is missing")

	// meshd names the problem on the MeshConfig.
	var oe *model.ObjectError
	require.Eventually(t, func() bool {
		oe = meshConfigError(t, m, "collector.envoy-als-tel")
		return oe != nil
	}, 15*time.Second, 50*time.Millisecond, "/debug/configz must report the missing collector on the MeshConfig")
	t.Logf("meshd reports: %s", oe.Error())
	// Nothing pushed broken. Envoy would accept a listener whose access log
	// names a missing cluster (no update_rejected), so look at what it holds.
	collector := "outbound|9000||collector." + tel + ".svc.cluster.local"
	assert.Empty(t, sc.Rejected(t))
	assert.Empty(t, sc.DanglingRefs(t), "no listener refers to a cluster Envoy lacks")
	_, refs := sc.ClusterRefs(t)
	assert.NotContains(t, refs, collector, "no listener sends access logs to the missing collector")
	got := spread(t, 20, url, host)
	assert.Equal(t, 20, got["echo-0"], "Envoy keeps serving: %v", got)

	// The collector appears: Service, endpoint, then logs flow.
	c.namespace(tel, nil)
	col := startCollector(t, backendIP(44, 50), 9000)
	c.service(tel, "collector", 9000) // port name grpc
	c.createSlice(slice(tel, "collector-1", "collector", 9000, ep{b: &harness.Backend{IP: backendIP(44, 50)}, ready: true}))
	url = "http://" + vip + ":8080/after"
	require.Eventually(t, func() bool {
		get(url, host)
		for _, p := range col.received() {
			if p == "/after" {
				return true
			}
		}
		return false
	}, 20*time.Second, 100*time.Millisecond, "no access-log entry reached the collector")
	_, refs = sc.ClusterRefs(t)
	assert.Contains(t, refs, collector, "the listeners now log to the collector's cluster")
	assert.Empty(t, sc.DanglingRefs(t))
	col.mu.Lock()
	assert.True(t, col.logs["bank"], "entries carry the provider's logName: %v", col.logs)
	col.mu.Unlock()
	require.Eventually(t, func() bool { return meshConfigError(t, m, "collector.envoy-als-tel") == nil },
		15*time.Second, 50*time.Millisecond, "the MeshConfig error clears once the collector exists")
	t.Logf("collector received %d entries", len(col.received()))
}

// meshConfigError returns the MeshConfig error in /debug/configz whose
// message mentions s, nil if none.
func meshConfigError(t *testing.T, m *harness.Meshd, s string) *model.ObjectError {
	for _, e := range configzErrors(t, m) {
		if e.Kind == model.KindMeshConfig && strings.Contains(e.Message, s) {
			return &e
		}
	}
	return nil
}
