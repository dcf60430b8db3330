package xds

import (
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/xdsclient"
)

// BenchmarkEndpointFanOut: one EndpointSlice of a 1,000-service mesh
// changes with 200 proxies connected over gRPC on loopback, a connection
// each (internal/xdsclient, subscribing and ACKing as Envoy), every one
// watching the changed assignment: an op is the push and every proxy's
// ACK of the new assignment — the rolling-update case of hack/bench at a
// tenth of its proxies. Allocations include the clients' (the server's
// are what a -memprofile shows under xds and grpc's server transport).
func BenchmarkEndpointFanOut(b *testing.B) { endpointFanOut(b, false) }

// endpointFanOut is BenchmarkEndpointFanOut over state of the world or
// delta (BenchmarkProtocolEndpointFanOut).
func endpointFanOut(b *testing.B, delta bool) {
	const proxies = 200
	const cluster = "outbound|8080||svc-5.bench-5.svc.cluster.local"
	var acked atomic.Int32
	done := make(chan struct{}, 1)
	m, store, s := benchClients(b, proxies, delta, func(_ *xdsclient.Client, r xdsclient.Response) {
		if r.Type == "eds" && !r.Nack && slices.Contains(r.Names, cluster) && acked.Add(1) == proxies {
			done <- struct{}{}
		}
	})
	ns := m.Namespace(5)
	round := 0
	b.ReportAllocs()
	for b.Loop() {
		round++
		acked.Store(0)
		rollEndpoints(store, s, ns, round)
		select {
		case <-done:
		case <-time.After(time.Minute):
			b.Fatalf("round %d: %d of %d proxies ACKed", round, acked.Load(), proxies)
		}
	}
}
