package xds

import (
	"testing"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ExplainGateway answers for a connected gateway proxy, by node ID or
// pod.namespace; a sidecar is refused with ErrNotGateway, an unknown
// proxy with an error.
func TestExplainGatewayByProxy(t *testing.T) {
	s, conn := startServer(t, testStore(t))
	gw := newSotwClient(t, conn, "router~10.1.0.9~gw-1.edge~edge.svc.cluster.local", "edge")
	gw.initial(resourcev3.ClusterType)
	sc := newSotwClient(t, conn, "sidecar~10.1.0.8~web-1.shop~shop.svc.cluster.local", "shop")
	sc.initial(resourcev3.ClusterType)

	for _, id := range []string{"router~10.1.0.9~gw-1.edge~edge.svc.cluster.local", "gw-1.edge"} {
		e, err := s.ExplainGateway(id)
		require.NoError(t, err)
		assert.Equal(t, "router|envoy|edge|", e.Scope)
		assert.Empty(t, e.Gateways, "the store has no Gateway")
		assert.NotNil(t, e.Ports)
	}
	_, err := s.ExplainGateway("web-1.shop")
	require.ErrorIs(t, err, ErrNotGateway)
	assert.Contains(t, err.Error(), "/debug/sidecarz")
	_, err = s.ExplainGateway("nope.shop")
	require.Error(t, err)
	assert.NotErrorIs(t, err, ErrNotGateway)
}
