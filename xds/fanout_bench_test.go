package xds

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/internal/xdsclient"
)

// BenchmarkEndpointFanOut: one EndpointSlice of a 1,000-service mesh
// changes with 200 proxies connected over gRPC on loopback, a connection
// each (internal/xdsclient, subscribing and ACKing as Envoy), every one
// watching the changed assignment: an op is the push and every proxy's
// ACK of the new assignment — the rolling-update case of hack/bench at a
// tenth of its proxies. Allocations include the clients' (the server's
// are what a -memprofile shows under xds and grpc's server transport).
func BenchmarkEndpointFanOut(b *testing.B) {
	const proxies = 200
	m, store, s := benchServer(b, 0)
	ctx, cancel := context.WithCancel(context.Background())
	g := grpc.NewServer(TransportOptions()...)
	s.Register(ctx, g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = g.Serve(lis) }()
	b.Cleanup(func() { cancel(); g.Stop() })

	ns := m.Namespace(5)
	const cluster = "outbound|8080||svc-5.bench-5.svc.cluster.local"
	var acked atomic.Int32
	done := make(chan struct{}, 1)
	onResponse := func(_ *xdsclient.Client, r xdsclient.Response) {
		if r.Type == "eds" && !r.Nack && slices.Contains(r.Names, cluster) && acked.Add(1) == proxies {
			done <- struct{}{}
		}
	}
	var clients []*xdsclient.Client
	for i := range proxies {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		pns := m.Namespace(i)
		c, err := xdsclient.StartWith(conn, fmt.Sprintf("sidecar~10.0.%d.%d~pod-%d.%s~%s.svc.cluster.local", i/250, i%250+1, i, pns, pns),
			map[string]any{"NAMESPACE": pns, "LABELS": map[string]any{"app": fmt.Sprintf("svc-%d", i)}},
			xdsclient.Options{OnResponse: onResponse})
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
		b.Cleanup(func() { c.Close(); conn.Close() })
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	for _, c := range clients {
		if err := c.Wait(wctx, func(c *xdsclient.Client) bool { return c.Complete() && c.Holds("eds", cluster) }); err != nil {
			b.Fatalf("proxy %s not configured: %v", c.NodeID(), err)
		}
	}

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
