package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const clientNode = "sidecar~127.0.0.1~client.demo~demo.svc.cluster.local"

const meshYAML = `
apiVersion: v1
kind: Namespace
metadata: {name: demo}
---
apiVersion: v1
kind: Service
metadata: {name: echo, namespace: demo}
spec:
  clusterIP: 10.96.7.7
  ports:
  - {name: grpc, port: 7070}
---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: echo, namespace: demo}
spec:
  host: echo
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`

// endpointsYAML returns one EndpointSlice per backend (each has its own port)
// and a Pod carrying its version label. Backends not ready are marked so.
func endpointsYAML(backends map[string]*backend, versions map[string]string, notReady map[string]bool) string {
	var sb strings.Builder
	for _, name := range []string{"a", "b", "c"} {
		b := backends[name]
		fmt.Fprintf(&sb, `---
apiVersion: v1
kind: Pod
metadata: {name: echo-%[1]s, namespace: demo, labels: {app: echo, version: %[2]s}}
spec: {containers: [{name: echo, image: echo}]}
status: {podIP: 127.0.0.1}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: echo-%[1]s
  namespace: demo
  labels: {kubernetes.io/service-name: echo}
addressType: IPv4
ports:
- {name: grpc, port: %[3]d}
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: %[4]t, terminating: %[5]t}
  targetRef: {kind: Pod, name: echo-%[1]s, namespace: demo}
`, name, versions[name], b.port, !notReady[name], notReady[name])
	}
	return sb.String()
}

func weightsYAML(v1, v2 int) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: echo, namespace: demo}
spec:
  hosts: [echo.demo.svc.cluster.local]
  http:
  - route:
    - destination: {host: echo, subset: v1}
      weight: %d
    - destination: {host: echo, subset: v2}
      weight: %d
`, v1, v2)
}

// TestWeightedSplitAndEndpointRemoval drives the real meshd binary with the
// file provider and grpc-go's xDS client: RPCs succeed, an 80/20 split is
// followed, a weight change moves traffic, and removing an endpoint stops all
// traffic to it once the client ACKs — with no failed RPC at any point.
func TestWeightedSplitAndEndpointRemoval(t *testing.T) {
	backends := map[string]*backend{"a": startBackend(t, "a"), "b": startBackend(t, "b"), "c": startBackend(t, "c")}
	versions := map[string]string{"a": "v1", "b": "v2", "c": "v2"}
	dir := t.TempDir()
	writeFile(t, dir, "mesh.yaml", meshYAML)
	writeFile(t, dir, "endpoints.yaml", endpointsYAML(backends, versions, nil))
	writeFile(t, dir, "vs.yaml", weightsYAML(80, 20))

	m := startMeshd(t, dir)
	conn := dialXDS(t, m, "xds:///echo.demo.svc.cluster.local:7070")

	// Background load for the whole test: every RPC must succeed.
	var failures, total atomic.Int64
	var firstErr atomic.Value
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := call(ctx, conn); err != nil && ctx.Err() == nil {
				failures.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
			total.Add(1)
			time.Sleep(2 * time.Millisecond)
		}
	}()
	defer func() { cancel(); wg.Wait() }()

	// 1. 80/20 split between v1 (a) and v2 (b, c). 600 RPCs: 3.9σ at ±7%.
	const n, tol = 600, 0.07
	got := spread(t, conn, n)
	t.Logf("80/20 split over %d RPCs: %v", n, got)
	assert.InDelta(t, 0.80, share(got, "a"), tol, "v1 share")
	rds := m.acked(t, clientNode, "rds")
	require.NotEmpty(t, rds, "client must have ACKed its routes")

	// 2. Shift weights to 20/80; once the client ACKs the new routes, traffic follows.
	writeFile(t, dir, "vs.yaml", weightsYAML(20, 80))
	_, took := m.waitNewAck(t, clientNode, "rds", rds)
	t.Logf("weight change ACKed %v after the file was written", took)
	got = spread(t, conn, n)
	t.Logf("20/80 split over %d RPCs: %v", n, got)
	assert.InDelta(t, 0.20, share(got, "a"), tol, "v1 share")

	// 3. Mark c terminating: once the EDS update is ACKed, nothing reaches c.
	eds := m.acked(t, clientNode, "eds")
	writeFile(t, dir, "endpoints.yaml", endpointsYAML(backends, versions, map[string]bool{"c": true}))
	_, took = m.waitNewAck(t, clientNode, "eds", eds)
	t.Logf("endpoint removal ACKed %v after the file was written", took)
	// The balancer applies the update right after the ACK; allow it a moment.
	time.Sleep(100 * time.Millisecond)
	got = spread(t, conn, 300)
	t.Logf("after removing c: %v", got)
	assert.Zero(t, got["c"], "no RPC may reach the removed backend after the ACK")
	assert.Positive(t, got["b"], "v2 traffic continues on b")

	cancel()
	wg.Wait()
	t.Logf("background RPCs: %d, failed: %d", total.Load(), failures.Load())
	assert.Zero(t, failures.Load(), "no RPC may fail during config changes (first error: %v)", firstErr.Load())
	assert.Positive(t, total.Load())
}
