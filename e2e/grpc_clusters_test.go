package e2e

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// clusterHealth is a backend for cluster features: it fails every RPC when
// failing is set, and holds each RPC until release is closed when hold is set.
type clusterHealth struct {
	healthgrpc.UnimplementedHealthServer
	name     string
	failing  bool
	hold     bool
	release  chan struct{}
	calls    atomic.Int64
	inFlight atomic.Int64
}

func (h *clusterHealth) Check(ctx context.Context, _ *healthgrpc.HealthCheckRequest) (*healthgrpc.HealthCheckResponse, error) {
	h.calls.Add(1)
	h.inFlight.Add(1)
	defer h.inFlight.Add(-1)
	if h.failing {
		return nil, status.Error(codes.Internal, "broken backend "+h.name)
	}
	if h.hold {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-h.release:
		}
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs("backend", h.name))
	return &healthgrpc.HealthCheckResponse{Status: healthgrpc.HealthCheckResponse_SERVING}, nil
}

func startClusterBackend(t *testing.T, h *clusterHealth) int {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	healthgrpc.RegisterHealthServer(srv, h)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().(*net.TCPAddr).Port
}

// quotesMesh returns the manifests of service quotes in demo, one
// EndpointSlice per backend port, and the DestinationRule trafficPolicy.
func quotesMesh(ports []int, trafficPolicy string) string {
	var sb strings.Builder
	sb.WriteString(`apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: Service
metadata: {name: quotes, namespace: demo}
spec:
  clusterIP: 10.96.8.8
  ports:
  - {name: grpc, port: 7070}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: quotes, namespace: demo}
spec:
  host: quotes
  trafficPolicy:
` + trafficPolicy)
	for i, p := range ports {
		fmt.Fprintf(&sb, `---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: quotes-%d
  namespace: demo
  labels: {kubernetes.io/service-name: quotes}
addressType: IPv4
ports:
- {name: grpc, port: %d}
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
`, i, p)
	}
	return sb.String()
}

// dialQuotes starts meshd on the mesh and returns a proxyless client that
// has ACKed every resource type (a NACKed cluster would stay unacknowledged).
func dialQuotes(t *testing.T, mesh string) *grpc.ClientConn {
	dir := t.TempDir()
	writeFile(t, dir, "mesh.yaml", mesh)
	m := startMeshd(t, dir)
	conn := dialXDS(t, m, "xds:///quotes.demo.svc.cluster.local:7070")
	conn.Connect()
	for _, typ := range []string{"lds", "rds", "cds", "eds"} {
		require.Eventually(t, func() bool { return m.acked(t, clientNode, typ) != "" }, 10*time.Second, 20*time.Millisecond,
			"client never ACKed %s (NACKed?); logs:\n%s", typ, m.Logs())
	}
	return conn
}

// TestGRPCClusterOutlierDetection: a DestinationRule's outlier detection
// (failure percentage, the algorithm grpc-go implements) ejects a backend
// that fails every RPC; afterwards all traffic goes to the healthy ones.
// grpc-go's defaults need 5 hosts with 50 requests each per interval.
func TestGRPCClusterOutlierDetection(t *testing.T) {
	backends := make([]*clusterHealth, 5)
	ports := make([]int, 5)
	for i := range backends {
		backends[i] = &clusterHealth{name: fmt.Sprintf("q%d", i), failing: i == 0}
		ports[i] = startClusterBackend(t, backends[i])
	}
	conn := dialQuotes(t, quotesMesh(ports, `    loadBalancer: {simple: ROUND_ROBIN}
    outlierDetection:
      failurePercentageThreshold: 50
      interval: 1s
      baseEjectionTime: 300s
      maxEjectionPercent: 40
`))

	failedBefore := 0
	ejected := false
	deadline := time.Now().Add(20 * time.Second)
	for !ejected && time.Now().Before(deadline) {
		failures := 0
		for i := 0; i < 100; i++ {
			if _, err := call(context.Background(), conn); err != nil {
				failures++
			}
		}
		failedBefore += failures
		ejected = failures == 0
	}
	require.True(t, ejected, "the failing backend was never ejected")
	assert.Positive(t, failedBefore, "the failing backend must have been called before its ejection")

	calls0 := backends[0].calls.Load()
	got := spread(t, conn, 300)
	t.Logf("after ejection: %v (RPCs failed before ejection: %d)", got, failedBefore)
	assert.Equal(t, calls0, backends[0].calls.Load(), "no RPC may reach the ejected backend")
	assert.Len(t, got, 4, "the four healthy backends share the traffic")
}

// TestGRPCClusterCircuitBreaker: connectionPool.http.http2MaxRequests becomes
// the cluster's max_requests; with that many RPCs in flight, the next one
// fails at once with UNAVAILABLE, and RPCs succeed again once they finish.
func TestGRPCClusterCircuitBreaker(t *testing.T) {
	h := &clusterHealth{name: "slow", hold: true, release: make(chan struct{})}
	port := startClusterBackend(t, h)
	conn := dialQuotes(t, quotesMesh([]int{port}, `    connectionPool:
      http: {http2MaxRequests: 2}
`))

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = call(ctx, conn)
		}()
	}
	require.Eventually(t, func() bool { return h.inFlight.Load() == 2 }, 10*time.Second, 10*time.Millisecond,
		"the limit's worth of RPCs must reach the backend")

	start := time.Now()
	_, err := call(ctx, conn)
	require.Error(t, err, "an RPC over max_requests must be rejected")
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	assert.Less(t, time.Since(start), 2*time.Second, "rejected at once, not queued")
	assert.Equal(t, int64(2), h.calls.Load(), "the rejected RPC never reaches the backend")

	close(h.release)
	wg.Wait()
	for i, err := range errs {
		assert.NoError(t, err, "in-flight RPC %d", i)
	}
	_, err = call(ctx, conn)
	assert.NoError(t, err, "RPCs succeed again under the limit")
}
