package translate_test

import (
	"fmt"
	"testing"

	"github.com/meshd/meshd/hack/bench/meshgen"
	"github.com/meshd/meshd/translate"
)

// benchSizes are the mesh sizes the translation benchmarks run at: ten
// endpoints per service, one namespace per 50 services (hack/bench's shape).
var benchSizes = []int{100, 500, 1000}

func benchMesh(b *testing.B, services int) meshgen.Mesh {
	return meshgen.Mesh{Services: services, Endpoints: 10 * services, Namespaces: max(1, services/50)}
}

// BenchmarkNewIndex: the scope-independent part of translation, once per
// snapshot.
func BenchmarkNewIndex(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("services=%d", n), func(b *testing.B) {
			m := benchMesh(b, n)
			snap, err := m.Snapshot()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				translate.NewIndex(snap, translate.Options{})
			}
		})
	}
}

// BenchmarkBuild translates one sidecar scope (a workload's labels), as
// meshd does per scope. cold: the first scope of its namespace on a fresh
// Index (the whole outbound config is translated); workload: another
// workload of a namespace already built on that Index (the outbound view
// is shared, only the workload's own part is new).
func BenchmarkBuild(b *testing.B) {
	for _, n := range benchSizes {
		m := benchMesh(b, n)
		snap, err := m.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("cold/services=%d", n), func(b *testing.B) {
			var out *translate.Output
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				x := translate.NewIndex(snap, translate.Options{})
				b.StartTimer()
				out = translate.Build(x, m.Scope(1, true))
			}
			b.ReportMetric(float64(len(out.Clusters)), "clusters")
		})
		b.Run(fmt.Sprintf("workload/services=%d", n), func(b *testing.B) {
			x := translate.NewIndex(snap, translate.Options{})
			translate.Build(x, m.Scope(1, true))
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i += m.Namespaces // another service (workload) of the same namespace
				translate.Build(x, m.Scope(1+i%n, true))
			}
		})
	}
}

// BenchmarkValidate checks one scope's output before it is served. full:
// Validate (ValidateAll of every resource, then referential integrity);
// workload: ValidateIn for another workload's output on an Index whose
// shared resources were already checked.
func BenchmarkValidate(b *testing.B) {
	for _, n := range benchSizes {
		m := benchMesh(b, n)
		snap, err := m.Snapshot()
		if err != nil {
			b.Fatal(err)
		}
		x := translate.NewIndex(snap, translate.Options{})
		out := translate.Build(x, m.Scope(1, true))
		b.Run(fmt.Sprintf("full/services=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := translate.Validate(out); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("workload/services=%d", n), func(b *testing.B) {
			if err := translate.ValidateIn(x, out); err != nil {
				b.Fatal(err)
			}
			other := translate.Build(x, m.Scope(1+m.Namespaces, true))
			b.ReportAllocs()
			for b.Loop() {
				if err := translate.ValidateIn(x, other); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
