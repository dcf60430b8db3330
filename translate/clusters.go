package translate

import (
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/meshd/meshd/internal/model"
)

// connectTimeout is istiod's default cluster connect timeout.
const connectTimeout = 10 * time.Second

// serviceClusters returns the outbound clusters of services (every port, and
// every DestinationRule subset), plus any cluster the routes reference that
// the scope does not otherwise see, so no route points at a missing cluster.
func (b *builder) serviceClusters(services []*model.Service, routes []*route.RouteConfiguration) []*cluster.Cluster {
	seen := map[string]bool{}
	var out []*cluster.Cluster
	add := func(svc *model.Service, p model.Port, subset string) {
		name := ClusterName(p.Port, subset, svc.Hostname)
		if seen[name] {
			return
		}
		seen[name] = true
		if c := b.outboundCluster(name, svc, p); c != nil {
			out = append(out, c)
		}
	}
	for _, svc := range services {
		for _, p := range svc.Ports {
			add(svc, p, "")
			for _, s := range b.x.subsets[svc.Hostname] {
				add(svc, p, s.GetName())
			}
		}
	}
	for _, name := range referencedClusters(routes) {
		port, subset, host, ok := ParseClusterName(name)
		if !ok || seen[name] {
			continue
		}
		if svc, ok := b.x.byHost[host]; ok {
			if p, ok := svc.PortByNumber(port); ok {
				add(svc, p, subset)
			}
		}
	}
	return out
}

// outboundCluster builds one outbound cluster; nil if the scope cannot use it
// (proxyless gRPC supports only EDS clusters).
func (b *builder) outboundCluster(name string, svc *model.Service, p model.Port) *cluster.Cluster {
	c := &cluster.Cluster{
		Name:           name,
		ConnectTimeout: durationpb.New(connectTimeout),
		LbPolicy:       cluster.Cluster_ROUND_ROBIN,
	}
	switch svc.Resolution {
	case model.ResolutionEDS:
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_EDS}
		c.EdsClusterConfig = &cluster.Cluster_EdsClusterConfig{EdsConfig: adsConfigSource(), ServiceName: name}
	case model.ResolutionDNS, model.ResolutionDNSRoundRobin:
		if b.grpc {
			return nil
		}
		t := cluster.Cluster_STRICT_DNS
		if svc.Resolution == model.ResolutionDNSRoundRobin {
			t = cluster.Cluster_LOGICAL_DNS
		}
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: t}
		c.DnsLookupFamily = cluster.Cluster_V4_ONLY
		c.LoadAssignment = b.x.clas[name]
	case model.ResolutionPassthrough:
		if b.grpc {
			return nil
		}
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST}
		c.LbPolicy = cluster.Cluster_CLUSTER_PROVIDED
	}
	if !b.grpc && (p.Protocol == model.ProtocolHTTP2 || p.Protocol == model.ProtocolGRPC) {
		c.TypedExtensionProtocolOptions = http2Options()
	}
	return c
}

func http2Options() map[string]*anypb.Any {
	opts := &httpopts.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &core.Http2ProtocolOptions{},
				},
			},
		},
	}
	return map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": mustAny(opts)}
}

// blackHoleCluster is istiod's sink for traffic to unknown destinations.
func blackHoleCluster() *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 BlackHoleCluster,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(connectTimeout),
	}
}

// passthroughCluster forwards to the original destination (ALLOW_ANY).
func passthroughCluster() *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 PassthroughCluster,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST},
		LbPolicy:             cluster.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:       durationpb.New(connectTimeout),
	}
}

func adsConfigSource() *core.ConfigSource {
	return &core.ConfigSource{
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		ResourceApiVersion:    core.ApiVersion_V3,
	}
}
