package xds

import (
	"fmt"
	"testing"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/hack/bench/meshgen"
	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

var benchMarshal = proto.MarshalOptions{Deterministic: true}

// scopeOutput translates one sidecar scope of a generated mesh of n
// services (ten endpoints each, hack/bench's shape).
func scopeOutput(b *testing.B, n int) *translate.Output {
	m := meshgen.Mesh{Services: n, Endpoints: 10 * n, Namespaces: max(1, n/50)}
	snap, err := m.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	return translate.Build(translate.NewIndex(snap, translate.Options{}), m.Scope(1, true))
}

// BenchmarkToSnapshot: packing one scope's output into a go-control-plane
// snapshot with content-hash versions (buildSnapshot's last step).
func BenchmarkToSnapshot(b *testing.B) {
	for _, n := range []int{100, 500, 1000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			out := scopeOutput(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := toSnapshot(out, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMarshalScope: proto-marshalling every listener, route
// configuration and cluster of one scope once, the serialisation a scope's
// config costs when it is not shared.
func BenchmarkMarshalScope(b *testing.B) {
	for _, n := range []int{100, 500, 1000} {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			out := scopeOutput(b, n)
			var msgs []proto.Message
			for _, l := range out.Listeners {
				msgs = append(msgs, l)
			}
			for _, r := range out.Routes {
				msgs = append(msgs, r)
			}
			for _, c := range out.Clusters {
				msgs = append(msgs, c)
			}
			size := 0
			for _, m := range msgs {
				size += proto.Size(m)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				for _, m := range msgs {
					if _, err := benchMarshal.Marshal(m); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkMarshalEndpoints: proto-marshalling one scope's
// ClusterLoadAssignments (ten endpoints each).
func BenchmarkMarshalEndpoints(b *testing.B) {
	out := scopeOutput(b, 500)
	size := 0
	for _, c := range out.Endpoints {
		size += proto.Size(c)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for _, c := range out.Endpoints {
			if _, err := benchMarshal.Marshal(c); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkPushAllScopes: a config push (a canary) rebuilding 200 workload
// scopes of a 1,000-service mesh: translation, validation, versions and
// publication, as the benchmark's canary phase does for every workload.
func BenchmarkPushAllScopes(b *testing.B) {
	m := meshgen.Mesh{Services: 1000, Endpoints: 10000, Namespaces: 20}
	snap, err := m.Snapshot()
	if err != nil {
		b.Fatal(err)
	}
	s := New(Options{})
	s.PushSnapshot(snap)
	for i := range 200 {
		s.acquireScope(m.Scope(i, true), false)
	}
	b.ReportAllocs()
	for b.Loop() {
		s.push(snap, pushInfo{}) // a new Index: every view and scope is rebuilt
	}
}

// BenchmarkEndpointPush: one EndpointSlice of a 1,000-service mesh changes
// (a rolling-update step) and meshd pushes it with 200 workload scopes
// connected: a new snapshot, Index, assignments and the fast path.
func BenchmarkEndpointPush(b *testing.B) {
	m, store, s := benchServer(b, 200)
	ns := m.Namespace(5)
	round := 0
	b.ReportAllocs()
	for b.Loop() {
		round++
		rollEndpoints(store, s, ns, round)
	}
}

// rollEndpoints replaces svc-5's ten endpoints (in namespace ns) with
// round's and pushes the change on the endpoint fast path.
func rollEndpoints(store *model.Store, s *Server, ns string, round int) {
	set := &model.EndpointSet{Name: "svc-5-1", Namespace: ns, ServiceName: "svc-5"}
	for j := range 10 {
		set.Endpoints = append(set.Endpoints, model.Endpoint{Address: fmt.Sprintf("10.252.%d.%d", round%250, j+1),
			Ports: map[string]uint32{"http": 8080}, Ready: true, Serving: true})
	}
	snap := store.Apply([]model.Change{{Kind: model.KindEndpointSlice, Namespace: ns, Name: "svc-5-1", Object: set}})
	s.push(snap, pushInfo{endpointsOnly: true})
}

// BenchmarkCanaryPush: svc-0's VirtualService weight changes in a
// 1,000-service mesh with every workload's scope connected (hack/bench's
// canary at its large scale: 1,000 scopes over 20 namespaces).
func BenchmarkCanaryPush(b *testing.B) {
	m, store, s := benchServer(b, 1000)
	s.push(store.Current(), pushInfo{})
	o, ok := store.Current().Object(model.KindVirtualService, m.Namespace(0), "svc-0")
	if !ok {
		b.Fatal("no VirtualService svc-0")
	}
	vs := o.(*model.Config)
	round := 0
	b.ReportAllocs()
	for b.Loop() {
		round++
		spec := proto.Clone(vs.Spec).(*networking.VirtualService)
		w := int32(10 + round%80)
		spec.Http[0].Route[0].Weight, spec.Http[0].Route[1].Weight = w, 100-w
		next := *vs
		next.Spec = spec
		snap := store.Apply([]model.Change{{Kind: model.KindVirtualService, Namespace: vs.Namespace, Name: vs.Name, Object: &next}})
		s.push(snap, pushInfo{})
	}
}

// benchServer serves the generated 1,000-service mesh (hack/bench's large
// scale) with the scopes of the first n workloads connected.
func benchServer(b *testing.B, n int) (meshgen.Mesh, *model.Store, *Server) {
	b.Helper()
	m := meshgen.Mesh{Services: 1000, Endpoints: 10000, Namespaces: 20}
	store, err := m.Store()
	if err != nil {
		b.Fatal(err)
	}
	s := New(Options{})
	s.PushSnapshot(store.Current())
	for i := range n {
		s.acquireScope(m.Scope(i, true), false)
	}
	return m, store, s
}
