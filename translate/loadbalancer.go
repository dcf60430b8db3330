package translate

import (
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
)

// defaultLBPolicy is the balancer of an outbound cluster whose
// DestinationRule sets none (or sets no simple policy): LEAST_REQUEST for
// Envoy, as istiod's defaultLBAlgorithm (cluster_traffic_policy.go,
// applySimpleDefaultLoadBalancer). Proxyless gRPC clients get the zero
// value, ROUND_ROBIN, which grpc-go implements everywhere: istiod's grpcgen
// leaves lb_policy unset too, and names LEAST_REQUEST only when a rule
// asks for it. ORIGINAL_DST clusters are CLUSTER_PROVIDED either way.
func defaultLBPolicy(grpc bool) cluster.Cluster_LbPolicy {
	if grpc {
		return cluster.Cluster_ROUND_ROBIN
	}
	return cluster.Cluster_LEAST_REQUEST
}

// applyLoadBalancer maps loadBalancer as istiod does. PASSTHROUGH turns the
// cluster into an ORIGINAL_DST cluster (no endpoints); consistentHash gives
// RING_HASH or MAGLEV, with the hash key set on routes (see hashPolicy).
// Unset (no simple policy) keeps the cluster's default (defaultLBPolicy),
// as istiod's default case. gRPC clients get only the policies
// grpc-go implements: ROUND_ROBIN, LEAST_REQUEST and RING_HASH (xxHash).
func applyLoadBalancer(c *cluster.Cluster, lb *networking.LoadBalancerSettings, outlier, grpc bool) {
	if lb == nil {
		return
	}
	if ch := lb.GetConsistentHash(); ch != nil {
		applyConsistentHash(c, ch, grpc)
	} else {
		applySimpleLB(c, lb.GetSimple(), grpc)
	}
	if !grpc {
		applyLocality(c, lb.GetLocalityLbSetting(), outlier)
	}
}

func applySimpleLB(c *cluster.Cluster, simple networking.LoadBalancerSettings_SimpleLB, grpc bool) {
	switch simple {
	case networking.LoadBalancerSettings_LEAST_CONN, networking.LoadBalancerSettings_LEAST_REQUEST:
		c.LbPolicy = cluster.Cluster_LEAST_REQUEST
	case networking.LoadBalancerSettings_ROUND_ROBIN:
		c.LbPolicy = cluster.Cluster_ROUND_ROBIN
	case networking.LoadBalancerSettings_RANDOM:
		if !grpc {
			c.LbPolicy = cluster.Cluster_RANDOM
		}
	case networking.LoadBalancerSettings_PASSTHROUGH:
		if !grpc {
			c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST}
			c.LbPolicy = cluster.Cluster_CLUSTER_PROVIDED
			c.EdsClusterConfig = nil
			c.LoadAssignment = nil
		}
	}
}

// applyConsistentHash: maglev (not in gRPC, which gets a ring hash instead),
// an explicit ring hash, or the deprecated top-level minimumRingSize.
func applyConsistentHash(c *cluster.Cluster, ch *networking.LoadBalancerSettings_ConsistentHashLB, grpc bool) {
	if m := ch.GetMaglev(); m != nil && !grpc {
		c.LbPolicy = cluster.Cluster_MAGLEV
		c.LbConfig = nil
		if m.GetTableSize() != 0 {
			c.LbConfig = &cluster.Cluster_MaglevLbConfig_{MaglevLbConfig: &cluster.Cluster_MaglevLbConfig{
				TableSize: wrapperspb.UInt64(m.GetTableSize()),
			}}
		}
		return
	}
	size := ch.GetMinimumRingSize() //nolint:staticcheck // deprecated, still honoured by istiod
	if r := ch.GetRingHash(); r != nil {
		size = r.GetMinimumRingSize()
	}
	if size == 0 {
		size = defaultRingSize
	}
	c.LbPolicy = cluster.Cluster_RING_HASH
	c.LbConfig = &cluster.Cluster_RingHashLbConfig_{RingHashLbConfig: &cluster.Cluster_RingHashLbConfig{
		MinimumRingSize: wrapperspb.UInt64(size),
	}}
}

// applyLocality enables locality-weighted balancing when the rule
// distributes traffic across localities. Endpoint weights per locality are
// those of the shared ClusterLoadAssignment (its endpoint count): per-proxy
// weights and failover priorities need the proxy's locality, which is not
// part of a scope, and are not emitted. As in istiod, failover without
// outlier detection is meaningless and ignored.
func applyLocality(c *cluster.Cluster, l *networking.LocalityLoadBalancerSetting, outlier bool) {
	if l == nil || (l.GetEnabled() != nil && !l.GetEnabled().GetValue()) {
		return
	}
	if len(l.GetDistribute()) == 0 && !(outlier && (len(l.GetFailover()) > 0 || len(l.GetFailoverPriority()) > 0)) {
		return
	}
	if c.CommonLbConfig == nil {
		c.CommonLbConfig = &cluster.Cluster_CommonLbConfig{}
	}
	c.CommonLbConfig.LocalityConfigSpecifier = &cluster.Cluster_CommonLbConfig_LocalityWeightedLbConfig_{
		LocalityWeightedLbConfig: &cluster.Cluster_CommonLbConfig_LocalityWeightedLbConfig{},
	}
}

// hashPolicy returns the route hash policy a consistentHash load balancer
// needs (nil for any other balancer): the header, cookie, source IP or query
// parameter the ring is keyed on. Routes to a cluster use the policy of the
// DestinationRule that applies to the proxy; see Index.routeHashPolicy.
func hashPolicy(lb *networking.LoadBalancerSettings) []*route.RouteAction_HashPolicy {
	ch := lb.GetConsistentHash()
	if ch == nil {
		return nil
	}
	hp := &route.RouteAction_HashPolicy{}
	switch {
	case ch.GetHttpHeaderName() != "":
		hp.PolicySpecifier = &route.RouteAction_HashPolicy_Header_{Header: &route.RouteAction_HashPolicy_Header{
			HeaderName: ch.GetHttpHeaderName(),
		}}
	case ch.GetHttpCookie() != nil:
		ck := ch.GetHttpCookie()
		cookie := &route.RouteAction_HashPolicy_Cookie{Name: ck.GetName(), Path: ck.GetPath()}
		if ck.GetTtl() != nil {
			cookie.Ttl = durationpb.New(ck.GetTtl().AsDuration())
		}
		hp.PolicySpecifier = &route.RouteAction_HashPolicy_Cookie_{Cookie: cookie}
	case ch.GetUseSourceIp():
		hp.PolicySpecifier = &route.RouteAction_HashPolicy_ConnectionProperties_{
			ConnectionProperties: &route.RouteAction_HashPolicy_ConnectionProperties{SourceIp: true},
		}
	case ch.GetHttpQueryParameterName() != "":
		hp.PolicySpecifier = &route.RouteAction_HashPolicy_QueryParameter_{QueryParameter: &route.RouteAction_HashPolicy_QueryParameter{
			Name: ch.GetHttpQueryParameterName(),
		}}
	default:
		return nil
	}
	return []*route.RouteAction_HashPolicy{hp}
}

// routeHashPolicy returns the hash policy of routes that proxies of
// namespace proxyNS send to cluster outbound|port|subset|host, from the
// DestinationRule that applies to them (nil when none hashes). For routes
// with several weighted clusters, istiod uses the first destination's.
func (x *Index) routeHashPolicy(proxyNS, host string, port uint32, subset string) []*route.RouteAction_HashPolicy {
	svc, ok := x.byHost[host]
	if !ok {
		return nil
	}
	r := x.destinationRule(proxyNS, svc)
	if r == nil {
		return nil
	}
	var s *networking.Subset
	if subset != "" {
		s, _ = r.subset(subset)
	}
	return hashPolicy(clusterPolicy(r, s, port).GetLoadBalancer())
}
