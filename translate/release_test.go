package translate_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/hack/bench/meshgen"
	"github.com/meshd/meshd/translate"
)

// TestReleaseMemos: after ReleaseMemos, a scope's Build and validation
// give what they gave before, from views built again.
func TestReleaseMemos(t *testing.T) {
	m := meshgen.Mesh{Services: 60, Endpoints: 120, Namespaces: 3}
	snap, err := m.Snapshot()
	require.NoError(t, err)
	x := translate.NewIndex(snap, translate.Options{})
	before := translate.Build(x, m.Scope(1, true))
	require.NoError(t, translate.ValidateIn(x, before))
	x.ReleaseMemos()
	after := translate.Build(x, m.Scope(1, true))
	require.NoError(t, translate.ValidateIn(x, after))
	shared, _ := after.Parts()
	sharedBefore, _ := before.Parts()
	require.NotNil(t, shared)
	require.False(t, shared == sharedBefore, "the view is built again")
	require.Equal(t, len(before.Routes), len(after.Routes))
	for i := range before.Routes {
		require.True(t, proto.Equal(before.Routes[i], after.Routes[i]))
	}
	for i := range before.Clusters {
		require.True(t, proto.Equal(before.Clusters[i], after.Clusters[i]))
	}
	for i := range before.Listeners {
		require.True(t, proto.Equal(before.Listeners[i], after.Listeners[i]))
	}
}
