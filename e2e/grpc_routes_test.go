package e2e

import (
	"context"
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

	"github.com/meshd/meshd/e2e/harness"
)

// routesVS exercises the VirtualService features proxyless gRPC supports:
// header routing, retries, fault abort and delay, and a timeout (sent as
// max_stream_duration). Everything else goes to v1 (backend a).
const routesVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: demo}
spec:
  hosts: [echo.demo.svc.cluster.local]
  http:
  - name: gold
    match:
    - headers: {x-tenant: {exact: gold}}
    route:
    - destination: {host: echo, subset: v2}
  - name: abort
    match:
    - headers: {x-fault: {exact: abort}}
    fault:
      abort: {grpcStatus: RESOURCE_EXHAUSTED, percentage: {value: 100}}
    route:
    - destination: {host: echo, subset: v1}
  - name: delay
    match:
    - headers: {x-fault: {exact: delay}}
    fault:
      delay: {fixedDelay: 300ms, percentage: {value: 100}}
    route:
    - destination: {host: echo, subset: v1}
  - name: retry
    match:
    - headers: {x-retry: {exact: "yes"}}
    retries: {attempts: 3, retryOn: unavailable}
    route:
    - destination: {host: echo, subset: v1}
  - name: deadline
    match:
    - headers: {x-behavior: {exact: slow}}
    timeout: 200ms
    route:
    - destination: {host: echo, subset: v1}
  - name: rest
    route:
    - destination: {host: echo, subset: v1}
`

// scriptedHealth names itself like namedHealth and misbehaves on request:
// "x-behavior: flaky" fails an RPC's first attempt with UNAVAILABLE (grpc-go
// marks retries with grpc-previous-rpc-attempts), "x-behavior: slow" takes
// five seconds unless the caller gives up first.
type scriptedHealth struct {
	healthgrpc.UnimplementedHealthServer
	name  string
	calls atomic.Int64
}

func (h *scriptedHealth) Check(ctx context.Context, _ *healthgrpc.HealthCheckRequest) (*healthgrpc.HealthCheckResponse, error) {
	h.calls.Add(1)
	md, _ := metadata.FromIncomingContext(ctx)
	switch v := md.Get("x-behavior"); {
	case len(v) == 1 && v[0] == "flaky" && len(md.Get("grpc-previous-rpc-attempts")) == 0:
		return nil, status.Error(codes.Unavailable, "flaky backend: failing this attempt")
	case len(v) == 1 && v[0] == "slow":
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs("backend", h.name))
	return &healthgrpc.HealthCheckResponse{Status: healthgrpc.HealthCheckResponse_SERVING}, nil
}

func startScripted(t *testing.T, name string) (*backend, *scriptedHealth) {
	h := &scriptedHealth{name: name}
	b := harness.StartBackendWith(t, name, "127.0.0.1", 0, h)
	return &backend{name: name, port: b.Port}, h
}

// routesMesh starts three scripted backends (a: v1, b and c: v2) and meshd
// with routesVS, and returns a connected proxyless client once it has ACKed
// listeners and routes (a NACK would leave them unacknowledged).
func routesMesh(t *testing.T) (*grpc.ClientConn, map[string]*scriptedHealth) {
	backends := map[string]*backend{}
	health := map[string]*scriptedHealth{}
	for _, n := range []string{"a", "b", "c"} {
		backends[n], health[n] = startScripted(t, n)
	}
	dir := t.TempDir()
	writeFile(t, dir, "mesh.yaml", meshYAML)
	writeFile(t, dir, "endpoints.yaml", endpointsYAML(backends, map[string]string{"a": "v1", "b": "v2", "c": "v2"}, nil))
	writeFile(t, dir, "vs.yaml", routesVS)
	m := startMeshd(t, dir)
	conn := dialXDS(t, m, "xds:///echo.demo.svc.cluster.local:7070")
	_, err := callMD(conn, nil)
	require.NoError(t, err, "first RPC")
	for _, typ := range []string{"lds", "rds", "cds", "eds"} {
		require.Eventually(t, func() bool { return m.acked(t, clientNode, typ) != "" }, 10*time.Second, 20*time.Millisecond,
			"client never ACKed %s (NACKed?); logs:\n%s", typ, m.Logs())
	}
	return conn, health
}

// callMD makes one RPC with the given metadata and returns the backend that
// served it.
func callMD(conn *grpc.ClientConn, md map[string]string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.NewOutgoingContext(ctx, metadata.New(md))
	var hdr metadata.MD
	_, err := healthgrpc.NewHealthClient(conn).Check(ctx, &healthgrpc.HealthCheckRequest{}, grpc.Header(&hdr), grpc.WaitForReady(true))
	if err != nil {
		return "", err
	}
	if v := hdr.Get("backend"); len(v) == 1 {
		return v[0], nil
	}
	return "", nil
}

func TestGRPCHeaderRouting(t *testing.T) {
	conn, _ := routesMesh(t)
	for i := 0; i < 20; i++ {
		b, err := callMD(conn, map[string]string{"x-tenant": "gold"})
		require.NoError(t, err)
		assert.Contains(t, []string{"b", "c"}, b, "x-tenant: gold goes to v2")
		b, err = callMD(conn, map[string]string{"x-tenant": "silver"})
		require.NoError(t, err)
		assert.Equal(t, "a", b, "other tenants go to v1")
	}
}

// A backend failing every first attempt with UNAVAILABLE: with the route's
// retry policy every RPC succeeds on its second attempt; without one every
// RPC fails.
func TestGRPCRetriesOnUnavailable(t *testing.T) {
	conn, health := routesMesh(t)
	before := health["a"].calls.Load()
	const n = 10
	for i := 0; i < n; i++ {
		b, err := callMD(conn, map[string]string{"x-behavior": "flaky", "x-retry": "yes"})
		require.NoError(t, err, "RPC %d must succeed through its retry", i)
		assert.Equal(t, "a", b)
	}
	assert.Equal(t, int64(2*n), health["a"].calls.Load()-before, "each RPC took exactly two attempts")

	for i := 0; i < 3; i++ {
		_, err := callMD(conn, map[string]string{"x-behavior": "flaky"})
		assert.Equal(t, codes.Unavailable, status.Code(err), "without a retry policy the first failure is final")
	}
}

func TestGRPCFaultAbort(t *testing.T) {
	conn, health := routesMesh(t)
	before := health["a"].calls.Load()
	for i := 0; i < 10; i++ {
		_, err := callMD(conn, map[string]string{"x-fault": "abort"})
		require.Error(t, err)
		assert.Equal(t, codes.ResourceExhausted, status.Code(err), "abort at 100%% with the configured code")
	}
	assert.Equal(t, before, health["a"].calls.Load(), "aborted RPCs never reach the backend")
}

func TestGRPCFaultDelay(t *testing.T) {
	conn, _ := routesMesh(t)
	for i := 0; i < 3; i++ {
		start := time.Now()
		b, err := callMD(conn, map[string]string{"x-fault": "delay"})
		require.NoError(t, err)
		assert.Equal(t, "a", b)
		assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond, "the 300ms delay was injected")
	}
}

// The VirtualService timeout reaches grpc-go as max_stream_duration: a slow
// backend's RPC ends with DEADLINE_EXCEEDED long before it would answer.
func TestGRPCMaxStreamDuration(t *testing.T) {
	conn, _ := routesMesh(t)
	start := time.Now()
	_, err := callMD(conn, map[string]string{"x-behavior": "slow"})
	require.Error(t, err)
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err))
	assert.Less(t, time.Since(start), 4*time.Second, "ended by the route's 200ms timeout, not the backend's 5s")
}
