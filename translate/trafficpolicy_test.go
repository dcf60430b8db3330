package translate

import (
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1"
)

func TestHashPolicy(t *testing.T) {
	ch := func(c *networking.LoadBalancerSettings_ConsistentHashLB) *networking.LoadBalancerSettings {
		return &networking.LoadBalancerSettings{LbPolicy: &networking.LoadBalancerSettings_ConsistentHash{ConsistentHash: c}}
	}
	assert.Nil(t, hashPolicy(nil))
	assert.Nil(t, hashPolicy(&networking.LoadBalancerSettings{
		LbPolicy: &networking.LoadBalancerSettings_Simple{Simple: networking.LoadBalancerSettings_RANDOM},
	}))

	hp := hashPolicy(ch(&networking.LoadBalancerSettings_ConsistentHashLB{
		HashKey: &networking.LoadBalancerSettings_ConsistentHashLB_HttpHeaderName{HttpHeaderName: "x-user"},
	}))
	require.Len(t, hp, 1)
	assert.Equal(t, "x-user", hp[0].GetHeader().GetHeaderName())

	hp = hashPolicy(ch(&networking.LoadBalancerSettings_ConsistentHashLB{
		HashKey: &networking.LoadBalancerSettings_ConsistentHashLB_HttpCookie{HttpCookie: &networking.LoadBalancerSettings_ConsistentHashLB_HTTPCookie{
			Name: "session", Path: "/", Ttl: durationpb.New(60e9),
		}},
	}))
	require.Len(t, hp, 1)
	assert.Equal(t, "session", hp[0].GetCookie().GetName())
	assert.Equal(t, int64(60), hp[0].GetCookie().GetTtl().GetSeconds())

	hp = hashPolicy(ch(&networking.LoadBalancerSettings_ConsistentHashLB{
		HashKey: &networking.LoadBalancerSettings_ConsistentHashLB_UseSourceIp{UseSourceIp: true},
	}))
	assert.True(t, hp[0].GetConnectionProperties().GetSourceIp())

	hp = hashPolicy(ch(&networking.LoadBalancerSettings_ConsistentHashLB{
		HashKey: &networking.LoadBalancerSettings_ConsistentHashLB_HttpQueryParameterName{HttpQueryParameterName: "account"},
	}))
	assert.Equal(t, "account", hp[0].GetQueryParameter().GetName())
	for _, p := range hp {
		require.NoError(t, (&route.RouteAction{HashPolicy: []*route.RouteAction_HashPolicy{p},
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: "c"}}).ValidateAll())
	}
}

// Port-level settings replace the four policies wholesale (no inheritance);
// a subset's settings override field by field.
func TestMergeTrafficPolicy(t *testing.T) {
	lb := func(s networking.LoadBalancerSettings_SimpleLB) *networking.LoadBalancerSettings {
		return &networking.LoadBalancerSettings{LbPolicy: &networking.LoadBalancerSettings_Simple{Simple: s}}
	}
	pool := &networking.ConnectionPoolSettings{Tcp: &networking.ConnectionPoolSettings_TCPSettings{MaxConnections: 5}}
	top := &networking.TrafficPolicy{
		LoadBalancer:   lb(networking.LoadBalancerSettings_RANDOM),
		ConnectionPool: pool,
		PortLevelSettings: []*networking.TrafficPolicy_PortTrafficPolicy{{
			Port:         &networking.PortSelector{Number: 9090},
			LoadBalancer: lb(networking.LoadBalancerSettings_LEAST_REQUEST),
		}},
	}
	got := mergeTrafficPolicy(nil, top, 8080)
	assert.Equal(t, networking.LoadBalancerSettings_RANDOM, got.GetLoadBalancer().GetSimple())
	assert.Same(t, pool, got.GetConnectionPool())

	got = mergeTrafficPolicy(nil, top, 9090)
	assert.Equal(t, networking.LoadBalancerSettings_LEAST_REQUEST, got.GetLoadBalancer().GetSimple())
	assert.Nil(t, got.GetConnectionPool(), "port-level settings do not inherit")

	sub := &networking.TrafficPolicy{LoadBalancer: lb(networking.LoadBalancerSettings_ROUND_ROBIN)}
	got = mergeTrafficPolicy(mergeTrafficPolicy(nil, top, 8080), sub, 8080)
	assert.Equal(t, networking.LoadBalancerSettings_ROUND_ROBIN, got.GetLoadBalancer().GetSimple())
	assert.Same(t, pool, got.GetConnectionPool(), "a subset inherits what it does not set")
}
