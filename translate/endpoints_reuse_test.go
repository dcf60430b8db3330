package translate_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// TestIndexFromPreviousEqualsFresh: for every golden mesh, each service in
// turn gets another endpoint (a new EndpointSlice); the Index built from
// the previous one (its config taken over) has exactly the config errors,
// the golden scope's output, the assignments and endpoint shape of a fresh
// one, and shares the assignments of every other service.
func TestIndexFromPreviousEqualsFresh(t *testing.T) {
	cases, err := os.ReadDir("testdata")
	require.NoError(t, err)
	checked := 0
	for _, c := range cases {
		in := filepath.Join("testdata", c.Name(), "in.yaml")
		if _, err := os.Stat(in); err != nil {
			continue
		}
		t.Run(c.Name(), func(t *testing.T) {
			store := loadStore(t, in)
			scope, opts := readScope(t, in)
			prev := translate.NewIndex(store.Current(), opts)
			for i, svc := range store.Current().Services() {
				if svc.Origin != model.KindService || len(svc.Ports) == 0 {
					continue
				}
				ports := map[string]uint32{}
				for _, p := range svc.Ports {
					ports[p.Name] = p.Port
				}
				set := &model.EndpointSet{Name: svc.Name + "-reuse", Namespace: svc.Namespace, ServiceName: svc.Name,
					Endpoints: []model.Endpoint{{Address: fmt.Sprintf("10.254.0.%d", i+1), Ports: ports, Ready: true, Serving: true}}}
				snap := store.Apply([]model.Change{{Kind: model.KindEndpointSlice, Namespace: svc.Namespace, Name: set.Name, Object: set}})
				got := translate.NewIndexFrom(prev, snap, opts)
				want := translate.NewIndex(snap, opts)
				require.Equal(t, want.Errors(), got.Errors(), svc.Hostname)
				requireSameOutput(t, translate.Build(want, scope), translate.Build(got, scope))
				require.Equal(t, want.EndpointShape(), got.EndpointShape(), svc.Hostname)
				wantCLAs, gotCLAs, prevCLAs := want.ClusterLoadAssignments(), got.ClusterLoadAssignments(), prev.ClusterLoadAssignments()
				require.Len(t, gotCLAs, len(wantCLAs), svc.Hostname)
				for name, w := range wantCLAs {
					g, ok := gotCLAs[name]
					require.True(t, ok, "%s: %s missing", svc.Hostname, name)
					require.True(t, proto.Equal(w, g), "%s: %s differs", svc.Hostname, name)
					if !strings.Contains(name, "|"+svc.Hostname) {
						require.True(t, g == prevCLAs[name], "%s: %s belongs to another service: shared", svc.Hostname, name)
					}
				}
				prev = got
				checked++
			}
			// A pod (labels for an endpoint's address) changes as well.
			snap := store.Apply([]model.Change{{Kind: model.KindPod, Namespace: "default", Name: "reuse-pod",
				Object: &model.Workload{Name: "reuse-pod", Namespace: "default", IP: "10.254.0.1", Labels: map[string]string{"version": "v2"}}}})
			got := translate.NewIndexFrom(prev, snap, opts)
			requireSameAssignments(t, translate.NewIndex(snap, opts), got, "after a pod change")
			// Routing config that assignments do not depend on goes: they
			// are all shared.
			var gone []model.Change
			for _, k := range []model.Kind{model.KindVirtualService, model.KindGateway, model.KindSidecar} {
				for _, cfg := range snap.Configs(k) {
					gone = append(gone, model.Change{Kind: k, Namespace: cfg.Namespace, Name: cfg.Name})
				}
			}
			prev = got
			snap = store.Apply(gone)
			got = translate.NewIndexFrom(prev, snap, opts)
			requireSameAssignments(t, translate.NewIndex(snap, opts), got, "without routing config")
			for name, c := range got.ClusterLoadAssignments() {
				require.True(t, c == prev.ClusterLoadAssignments()[name], "without routing config: %s shared", name)
			}
		})
	}
	require.Greater(t, checked, 20)
}

// requireSameAssignments checks that got has want's endpoint shape and
// assignments.
func requireSameAssignments(t *testing.T, want, got *translate.Index, when string) {
	t.Helper()
	require.Equal(t, want.EndpointShape(), got.EndpointShape(), when)
	require.Len(t, got.ClusterLoadAssignments(), len(want.ClusterLoadAssignments()), when)
	for name, w := range want.ClusterLoadAssignments() {
		require.True(t, proto.Equal(w, got.ClusterLoadAssignments()[name]), "%s: %s differs", when, name)
	}
}
