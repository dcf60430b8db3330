package xds

import (
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/discovery/file"
	"github.com/meshd/meshd/internal/model"
)

// TestConfigPushRebuildsOnlyAffectedScopes: a VirtualService change in
// shop rebuilds the scopes that see its host; bank's, kept to its
// namespace by a Sidecar, keep their snapshot (and versions), and
// /debug/push_status counts both and says why.
func TestConfigPushRebuildsOnlyAffectedScopes(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"namespaces.yaml", "shop-frontend.yaml", "shop-reviews.yaml", "shop-reviews-routing.yaml", "bank.yaml"} {
		b, err := os.ReadFile("../hack/demo/" + name)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dir+"/"+name, b, 0o644))
	}
	require.NoError(t, os.WriteFile(dir+"/bank-sidecar.yaml", []byte(bankSidecar), 0o644))
	store := model.NewStore()
	require.NoError(t, file.New(dir, store).Load())

	s := New(Options{})
	scopes := []model.Scope{
		{Type: model.SidecarProxy, Namespace: "shop", Labels: "app=frontend,version=v1"},
		{Type: model.SidecarProxy, Namespace: "bank", Labels: "app=teller"},
		{Type: model.SidecarProxy, Generator: model.GeneratorGRPC, Namespace: "bank"},
		{Type: model.Router, Namespace: "shop", Labels: "istio=ingressgateway"},
	}
	for _, sc := range scopes {
		s.acquireScope(sc, false)
	}
	s.PushSnapshot(store.Current())
	before := map[string]any{}
	s.mu.Lock()
	for _, sc := range scopes {
		require.NotNil(t, s.scopes[sc.Key()].snap, sc.Key())
		before[sc.Key()] = s.scopes[sc.Key()].snap
	}
	s.mu.Unlock()

	s.push(store.Apply(decode(t, canary(t))), pushInfo{trigger: []string{"VirtualService"}})
	st := s.LastPush()
	assert.Equal(t, 1, st.ScopesBuilt)
	assert.Equal(t, 3, st.ScopesSkipped)
	assert.Equal(t, map[string]int{"VirtualService shop/reviews": 1}, st.RebuildReasons)
	assert.Equal(t, []string{"VirtualService shop/reviews"}, st.Changed)
	assert.Equal(t, 1, st.ScopesChanged)
	s.mu.Lock()
	for _, sc := range scopes {
		same := before[sc.Key()] == any(s.scopes[sc.Key()].snap)
		assert.Equal(t, sc.Namespace != "shop" || sc.Type == model.Router, same, "%s keeps its snapshot iff it cannot see the change", sc.Key())
	}
	s.mu.Unlock()

	// A kind not tracked per host (here a Gateway) rebuilds every scope.
	gw := "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: shop}\nspec:\n  selector: {istio: ingressgateway}\n" +
		"  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n"
	s.push(store.Apply(decode(t, gw)), pushInfo{trigger: []string{"Gateway"}})
	st = s.LastPush()
	assert.Equal(t, 4, st.ScopesBuilt)
	assert.Zero(t, st.ScopesSkipped)
	assert.Equal(t, map[string]int{"Gateway changed": 4}, st.RebuildReasons)
}
