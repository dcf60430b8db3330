package xdsclient

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// TestWireDecoding: the wire-level readers agree with full decoding on the
// names that matter and reject malformed bytes.
func TestWireDecoding(t *testing.T) {
	ads := &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}
	cases := []struct {
		c         *cluster.Cluster
		name, eds string
	}{
		{&cluster.Cluster{Name: "outbound|8080||a", ConnectTimeout: durationpb.New(1e9),
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: ads}}, "outbound|8080||a", "outbound|8080||a"},
		{&cluster.Cluster{Name: "outbound|8080|v1|a", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{EdsConfig: ads, ServiceName: "outbound|8080|v1|a~x"}},
			"outbound|8080|v1|a", "outbound|8080|v1|a~x"},
		{&cluster.Cluster{Name: "PassthroughCluster", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST}},
			"PassthroughCluster", ""},
		{&cluster.Cluster{Name: "static"}, "static", ""},
	}
	for _, tc := range cases {
		b, err := proto.Marshal(tc.c)
		require.NoError(t, err)
		name, eds, err := wireCluster(b)
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.name, name)
		assert.Equal(t, tc.eds, eds, tc.name)
	}
	for _, m := range []proto.Message{&endpoint.ClusterLoadAssignment{ClusterName: "x", Endpoints: []*endpoint.LocalityLbEndpoints{{}}},
		&route.RouteConfiguration{Name: "x", VirtualHosts: []*route.VirtualHost{{Name: "vh"}}}} {
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		name, err := wireName(b)
		require.NoError(t, err)
		assert.Equal(t, "x", name)
	}
	for _, bad := range [][]byte{{0xff}, {0xff, 0xff}, {0x0a, 0x05, 'a'}} {
		_, _, err := wireCluster(bad)
		assert.Error(t, err, "%x", bad)
		_, err = wireName(bad)
		assert.Error(t, err, "%x", bad)
	}
	_, err := wireName(nil)
	assert.Error(t, err, "a resource without a name is rejected")
}
