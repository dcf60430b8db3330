package translate

import (
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// connectTimeout is istiod's default cluster connect timeout.
const connectTimeout = 10 * time.Second

// serviceClusters returns the outbound clusters of services (every port,
// and every subset of the DestinationRule that applies to the scope), plus
// any cluster the routes reference that the scope does not otherwise see, so
// no route points at a missing cluster.
func (b *builder) serviceClusters(services []*model.Service, routes []*route.RouteConfiguration) []*cluster.Cluster {
	var out []*cluster.Cluster
	have := make(map[string][]*cluster.Cluster, len(services)) // by hostname
	for _, svc := range services {
		cs := b.clustersOf(svc)
		have[svc.Hostname] = cs
		out = append(out, cs...)
	}
	seen := map[string]bool{}
	for _, name := range referencedClusters(routes) {
		port, _, host, ok := ParseClusterName(name)
		if !ok || seen[name] || hasCluster(have[host], name) {
			continue
		}
		seen[name] = true
		if svc, ok := b.x.byHost[host]; ok {
			if p, ok := svc.PortByNumber(port); ok {
				if c := b.sharedCluster(name, svc, p); c != nil {
					out = append(out, c)
				}
			}
		}
	}
	return out
}

// hasCluster reports whether cs holds the cluster named name.
func hasCluster(cs []*cluster.Cluster, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}

// clustersOf returns the outbound clusters of svc's ports and of the
// subsets of the DestinationRule that applies to the scope, once per
// Index for every view that sees svc under the same rule (share.go).
func (b *builder) clustersOf(svc *model.Service) []*cluster.Cluster {
	r := b.x.destinationRule(b.scope.Namespace, svc)
	return b.x.shared.get(svcClustersKey{svc: svc, grpc: b.grpc, rule: r, autoMTLS: b.autoMTLS()}, func() any {
		var out []*cluster.Cluster
		seen := map[string]bool{}
		add := func(p model.Port, subset string) {
			name := ClusterName(p.Port, subset, svc.Hostname)
			if seen[name] {
				return
			}
			seen[name] = true
			if c := b.clusterWith(name, svc, p, r); c != nil {
				out = append(out, c)
			}
		}
		for _, p := range svc.Ports {
			add(p, "")
			if r != nil {
				for _, s := range r.spec.GetSubsets() {
					add(p, s.GetName())
				}
			}
		}
		return out
	}).([]*cluster.Cluster)
}

// sharedCluster is outboundCluster's value, shared by every view of the
// Index that builds the same cluster (share.go).
func (b *builder) sharedCluster(name string, svc *model.Service, p model.Port) *cluster.Cluster {
	return b.clusterWith(name, svc, p, b.x.destinationRule(b.scope.Namespace, svc))
}

// clusterWith is sharedCluster given the rule that applies to the scope.
func (b *builder) clusterWith(name string, svc *model.Service, p model.Port, r *destRule) *cluster.Cluster {
	k := clusterKey{svc: svc, port: p, name: name, grpc: b.grpc, rule: r, autoMTLS: b.autoMTLS()}
	return b.x.share(k, func() any { return b.outboundCluster(name, svc, p) }).(*cluster.Cluster)
}

// outboundCluster builds the outbound cluster name (outbound|port|subset|host)
// of svc's port p, with the traffic policy of the DestinationRule that
// applies to the scope (the subset's own policy overriding the rule's). A
// subset the scope's rule lacks takes its labels from the oldest rule that
// defines it (routes may name it). nil if the scope cannot use the cluster:
// proxyless gRPC supports only EDS clusters.
func (b *builder) outboundCluster(name string, svc *model.Service, p model.Port) *cluster.Cluster {
	if b.grpc && svc.Resolution != model.ResolutionEDS {
		return nil
	}
	_, subsetName, _, _ := ParseClusterName(name)
	r := b.x.destinationRule(b.scope.Namespace, svc)
	var subset *networking.Subset
	if subsetName != "" {
		if r != nil {
			subset, _ = r.subset(subsetName)
		}
		if subset == nil {
			subset, _ = b.x.subset(svc.Hostname, subsetName)
		}
	}
	eds := b.x.edsName(name, subset.GetLabels())
	c := &cluster.Cluster{
		Name:           name,
		ConnectTimeout: durationpb.New(connectTimeout),
		LbPolicy:       defaultLBPolicy(b.grpc),
	}
	switch svc.Resolution {
	case model.ResolutionEDS:
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_EDS}
		c.EdsClusterConfig = &cluster.Cluster_EdsClusterConfig{EdsConfig: adsConfigSource(), ServiceName: eds}
	case model.ResolutionDNS:
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STRICT_DNS}
		c.DnsLookupFamily = cluster.Cluster_V4_ONLY
		c.LoadAssignment = b.x.clas[eds]
	case model.ResolutionDNSRoundRobin:
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_LOGICAL_DNS}
		c.DnsLookupFamily = cluster.Cluster_V4_ONLY
		c.LoadAssignment = firstEndpoint(b.x.clas[eds])
	case model.ResolutionPassthrough:
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST}
		c.LbPolicy = cluster.Cluster_CLUSTER_PROVIDED
	}
	if !b.grpc && (p.Protocol == model.ProtocolHTTP2 || p.Protocol == model.ProtocolGRPC) {
		c.TypedExtensionProtocolOptions = http2Options()
	}
	tp := clusterPolicy(r, subset, p.Port)
	if r == nil && subset != nil {
		tp = mergeTrafficPolicy(nil, subset.GetTrafficPolicy(), p.Port)
	}
	t := policyTarget{port: p, host: svc.Hostname, subset: subsetName}
	if tp.GetTls().GetMode() == networking.ClientTLSSettings_ISTIO_MUTUAL && !b.grpc {
		t.sans = b.x.identities(svc)
	}
	applyTrafficPolicy(c, tp, t, b.grpc)
	b.applyAutoMTLS(c, tp, t, svc)
	if c.GetType() == cluster.Cluster_ORIGINAL_DST {
		c.LbPolicy = cluster.Cluster_CLUSTER_PROVIDED
		c.LbConfig = nil
	}
	return c
}

// firstEndpoint keeps the first endpoint of a load assignment: Envoy accepts
// exactly one for LOGICAL_DNS clusters (DNS_ROUND_ROBIN).
func firstEndpoint(cla *endpoint.ClusterLoadAssignment) *endpoint.ClusterLoadAssignment {
	if cla == nil || len(cla.GetEndpoints()) == 0 {
		return cla
	}
	first := cla.GetEndpoints()[0]
	return &endpoint.ClusterLoadAssignment{ClusterName: cla.GetClusterName(), Endpoints: []*endpoint.LocalityLbEndpoints{{
		Locality: first.GetLocality(), LbEndpoints: first.GetLbEndpoints()[:1], LoadBalancingWeight: wrapperspb.UInt32(1),
	}}}
}

func http2Options() map[string]*anypb.Any {
	return httpProtocolOptions(model.ProtocolHTTP2, nil)
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
