package meshgen

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
)

// TestSnapshot: the generated mesh loads without errors through the file
// provider, with its services, endpoints and routing.
func TestSnapshot(t *testing.T) {
	m := Mesh{Services: 25, Endpoints: 260, Namespaces: 2}
	snap, err := m.Snapshot()
	require.NoError(t, err)
	assert.Equal(t, 25, snap.Count(model.KindService))
	assert.Equal(t, 3, snap.Count(model.KindVirtualService))
	assert.Equal(t, 3, snap.Count(model.KindDestinationRule))
	total := 0
	for i := range 25 {
		total += len(snap.Endpoints(m.Host(i), m.Namespace(i)))
	}
	assert.Equal(t, 260, total)
	assert.Equal(t, "sidecar|envoy|bench-1|app=svc-1", m.Scope(1, true).Key())
}
