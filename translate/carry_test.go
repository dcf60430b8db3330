package translate

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/discovery/file"
	"github.com/meshd/meshd/internal/model"
)

// carryMesh: a Sidecar limits namespace a's view to port 8080 of b's
// services, so that view works on copies of them (portFilter.apply).
const carryMesh = `
apiVersion: v1
kind: Service
metadata: {name: api, namespace: b, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  clusterIP: 10.96.0.50
  ports: [{name: http, port: 8080}, {name: admin, port: 9090}]
---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: a, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  egress:
  - port: {number: 8080, protocol: HTTP, name: http}
    hosts: ["b/*"]
`

func countEntries(m *sync.Map) int {
	n := 0
	m.Range(func(any, any) bool { n++; return true })
	return n
}

// TestCarryStoresStayBounded: pushes that change nothing the carried
// values depend on hand the stores on without growing them, and a view's
// copy of a service (limited to a Sidecar's ports) is never carried.
func TestCarryStoresStayBounded(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.yaml"), []byte(carryMesh), 0o644))
	store := model.NewStore()
	require.NoError(t, (&file.Provider{Dir: dir, Store: store}).Load())
	scopes := []model.Scope{{Type: model.SidecarProxy, Namespace: "a"}, {Type: model.SidecarProxy, Namespace: "c"}}
	var x *Index
	sizes := []int{}
	for i := range 4 {
		snap := store.Current()
		if i > 0 { // endpoint changes
			set := &model.EndpointSet{Name: "api-1", Namespace: "b", ServiceName: "api", Endpoints: []model.Endpoint{
				{Address: fmt.Sprintf("10.1.0.%d", i), Ports: map[string]uint32{"http": 8080}, Ready: true, Serving: true}}}
			snap = store.Apply([]model.Change{{Kind: model.KindEndpointSlice, Namespace: "b", Name: "api-1", Object: set}})
		}
		x = NewIndexFrom(x, snap, Options{})
		for _, sc := range scopes {
			out := Build(x, sc)
			require.NoError(t, ValidateIn(x, out))
		}
		sizes = append(sizes, countEntries(x.carry.pure)+countEntries(x.carry.routing))
		x.carry.pure.Range(func(key, _ any) bool {
			require.True(t, x.indexed(key) || !isKey(key), "carried key of a service copy: %#v", key)
			return true
		})
	}
	require.Greater(t, sizes[0], 0)
	for i := 1; i < len(sizes); i++ {
		require.Equal(t, sizes[0], sizes[i], "push %d: the stores do not grow", i)
	}
}

// isKey reports whether a store entry is keyed by a key (not a value).
func isKey(k any) bool {
	switch k.(type) {
	case vhostKey, clusterKey:
		return true
	}
	return false
}
