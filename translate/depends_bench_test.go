package translate_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/hack/bench/meshgen"
	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// BenchmarkDependsScoped: the cost of deciding which of 2,000 scopes a
// VirtualService change reaches (translate.Changes once, Affects per
// scope), in a 1,000-service mesh of 100 namespaces each with a Sidecar
// "./*" + "istio-system/*" and a VirtualService, as banks run it.
func BenchmarkDependsScoped(b *testing.B) {
	m := meshgen.Mesh{Services: 1000, Endpoints: 10000, Namespaces: 100}
	store, err := m.Store()
	if err != nil {
		b.Fatal(err)
	}
	vs := func(ns string, host string, timeout time.Duration) *model.Config {
		return &model.Config{Kind: model.KindVirtualService, Namespace: ns, Name: "routes", Spec: &networking.VirtualService{
			Hosts: []string{host}, Http: []*networking.HTTPRoute{{Timeout: durationpb.New(timeout),
				Route: []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: host}}}}}}}
	}
	var changes []model.Change
	for n := range m.Namespaces {
		ns := m.Namespace(n)
		sc := &model.Config{Kind: model.KindSidecar, Namespace: ns, Name: "default", Spec: &networking.Sidecar{
			Egress: []*networking.IstioEgressListener{{Hosts: []string{"./*", "istio-system/*"}}}}}
		changes = append(changes, model.Change{Kind: model.KindSidecar, Namespace: ns, Name: "default", Object: sc},
			model.Change{Kind: model.KindVirtualService, Namespace: ns, Name: "routes", Object: vs(ns, m.Host(n), time.Second)})
	}
	prev := translate.NewIndex(store.Apply(changes), translate.Options{})
	ns := m.Namespace(3)
	x := translate.NewIndexFrom(prev, store.Apply([]model.Change{{Kind: model.KindVirtualService, Namespace: ns, Name: "routes",
		Object: vs(ns, m.Host(3), 2*time.Second)}}), translate.Options{})
	var scopes []model.Scope
	for i := range 2000 {
		scopes = append(scopes, m.Scope(i, true))
	}
	affected := 0
	b.ReportAllocs()
	for b.Loop() {
		affected = 0
		d := translate.Changes(prev, x)
		for _, sc := range scopes {
			if ok, _ := d.Affects(sc); ok {
				affected++
			}
		}
	}
	b.ReportMetric(float64(affected), "affected")
	if affected != 20 {
		b.Fatal(fmt.Sprintf("%d scopes affected, want namespace %s's 20", affected, ns))
	}
}
