package xds

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshd/meshd/hack/bench/meshgen"
	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/internal/xdsclient"
)

// benchClients serves the 1,000-service mesh and connects proxies
// over gRPC on loopback, each on its own connection (internal/xdsclient,
// delta or SotW, subscribing and ACKing as Envoy), and waits until every
// one is configured. onResponse sees every response.
func benchClients(b *testing.B, proxies int, delta bool, onResponse func(*xdsclient.Client, xdsclient.Response)) (meshgen.Mesh, *model.Store, *Server) {
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
	var clients []*xdsclient.Client
	for i := range proxies {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			b.Fatal(err)
		}
		pns := m.Namespace(i)
		c, err := xdsclient.StartWith(conn, fmt.Sprintf("sidecar~10.0.%d.%d~pod-%d.%s~%s.svc.cluster.local", i/250, i%250+1, i, pns, pns),
			map[string]any{"NAMESPACE": pns, "LABELS": map[string]any{"app": fmt.Sprintf("svc-%d", i)}},
			xdsclient.Options{Delta: delta, OnResponse: onResponse})
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
		b.Cleanup(func() { c.Close(); conn.Close() })
	}
	wctx, wcancel := context.WithTimeout(ctx, 2*time.Minute)
	defer wcancel()
	const cluster = "outbound|8080||svc-5.bench-5.svc.cluster.local"
	for _, c := range clients {
		if err := c.Wait(wctx, func(c *xdsclient.Client) bool { return c.Complete() && c.Holds("eds", cluster) }); err != nil {
			b.Fatalf("proxy %s not configured: %v", c.NodeID(), err)
		}
	}
	return m, store, s
}

// BenchmarkProtocolEndpointFanOut is BenchmarkEndpointFanOut over each
// protocol: an op is one assignment's change and every one of 200
// proxies' ACK of it.
func BenchmarkProtocolEndpointFanOut(b *testing.B) {
	for _, delta := range []bool{false, true} {
		b.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(b *testing.B) { endpointFanOut(b, delta) })
	}
}

// BenchmarkProtocolCanaryFanOut: svc-0's VirtualService weight changes
// with 200 proxies connected over each protocol: an op is the push and
// every proxy's receipt of its new route configuration.
func BenchmarkProtocolCanaryFanOut(b *testing.B) {
	for _, delta := range []bool{false, true} {
		b.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(b *testing.B) {
			const proxies = 200
			var got atomic.Int32
			done := make(chan struct{}, 1)
			m, store, s := benchClients(b, proxies, delta, func(_ *xdsclient.Client, r xdsclient.Response) {
				if r.Type == "rds" && !r.Nack && len(r.Names) > 0 && got.Add(1) == proxies {
					done <- struct{}{}
				}
			})
			o, ok := store.Current().Object(model.KindVirtualService, m.Namespace(0), "svc-0")
			if !ok {
				b.Fatal("no VirtualService svc-0")
			}
			vs := o.(*model.Config)
			round := 0
			b.ReportAllocs()
			for b.Loop() {
				round++
				got.Store(0)
				spec := proto.Clone(vs.Spec).(*networking.VirtualService)
				w := int32(10 + round%80)
				spec.Http[0].Route[0].Weight, spec.Http[0].Route[1].Weight = w, 100-w
				next := *vs
				next.Spec = spec
				s.push(store.Apply([]model.Change{{Kind: model.KindVirtualService, Namespace: vs.Namespace, Name: vs.Name, Object: &next}}), pushInfo{})
				select {
				case <-done:
				case <-time.After(time.Minute):
					b.Fatalf("round %d: %d of %d proxies got routes", round, got.Load(), proxies)
				}
			}
		})
	}
}

// BenchmarkProtocolConnectHeap reports the live heap (after a collection)
// with 200 proxies connected and configured over each protocol: server
// state plus the in-process clients' (the same for both protocols).
func BenchmarkProtocolConnectHeap(b *testing.B) {
	for _, delta := range []bool{false, true} {
		b.Run(map[bool]string{false: "sotw", true: "delta"}[delta], func(b *testing.B) {
			for b.Loop() {
				benchClients(b, 200, delta, nil)
				runtime.GC()
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "heap-MB")
			}
		})
	}
}
