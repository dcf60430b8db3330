package xdsclient

import (
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// TestACKNamesEncoding: an ACK is its other fields followed by the cached
// encoding of the names, which decodes as the names; a different list
// (even of the same length) is encoded afresh.
func TestACKNamesEncoding(t *testing.T) {
	s := &sotw{}
	const eds = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	head, err := proto.Marshal(&discovery.DiscoveryRequest{TypeUrl: eds, VersionInfo: "v1", ResponseNonce: "7"})
	require.NoError(t, err)
	decode := func(names []string) *discovery.DiscoveryRequest {
		got := &discovery.DiscoveryRequest{}
		require.NoError(t, proto.Unmarshal(append(append([]byte(nil), head...), s.encoded(eds, names)...), got))
		return got
	}
	first := []string{"outbound|80||a.ns.svc.cluster.local", "outbound|80||b.ns.svc.cluster.local"}
	got := decode(first)
	require.True(t, proto.Equal(&discovery.DiscoveryRequest{TypeUrl: eds, VersionInfo: "v1", ResponseNonce: "7", ResourceNames: first}, got), "%v", got)
	require.Equal(t, first, decode(first).ResourceNames, "from the cache")
	second := []string{"outbound|80||c.ns.svc.cluster.local", "outbound|80||d.ns.svc.cluster.local"}
	require.Equal(t, second, decode(second).ResourceNames, "another list of the same length")
	require.Equal(t, first, decode(first).ResourceNames)
	require.Empty(t, decode(nil).ResourceNames)
}
