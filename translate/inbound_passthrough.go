package translate

import (
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	httpinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	originaldst "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The passthrough side of virtualInbound, as istiod 1.29's
// buildInboundPassthroughChains and inboundVirtualListener
// (pilot/pkg/networking/core/listener_inbound.go) build it for a workload
// without mTLS termination (the plaintext filter chain match options):
// every sidecar gets it, whether or not its workload backs a service, so
// that inbound traffic iptables redirects to 15006 is delivered to the
// application instead of dropped. Chains, in istiod's order:
//   - virtualInbound-blackhole: connections to 15006 itself → BlackHoleCluster
//     (a connection to the listener's own port would loop);
//   - virtualInbound-catchall-http: plaintext HTTP/1.1 or h2c (the HTTP
//     inspector's verdict) → HTTP connection manager → InboundPassthroughCluster;
//   - virtualInbound: any other plaintext bytes → tcp_proxy → InboundPassthroughCluster;
//
// then the workload's per-port chains (inbound.go), which match on the
// destination port and win over the passthrough chains. The HTTP inspector
// is disabled for the ports of chains that do not look at application
// protocols (filter_disabled), as istiod's buildHTTPInspector does, so
// traffic to a declared port is not delayed by it.
//
// istiod's default mTLS mode (PERMISSIVE) adds chains that terminate Istio
// mTLS with the SDS certificates and a TLS inspector; meshd adds them for
// the workload's ports of a proxy run by Istio's agent (inbound_mtls.go),
// not to the passthrough chains: TLS bytes to an undeclared port take the
// plaintext TCP chain and reach the application as they came.
const (
	inboundBlackholeChain   = "virtualInbound-blackhole"
	inboundCatchAllHTTP     = "virtualInbound-catchall-http"
	httpInspectorName       = "envoy.filters.listener.http_inspector"
	rawBufferTransport      = "raw_buffer"
	inboundPassthroughVHost = "inbound|http|0"
)

// plaintextHTTPALPNs are the application protocols the HTTP inspector
// reports for plaintext HTTP (istiod's plaintextHTTPALPNs).
var plaintextHTTPALPNs = []string{"http/1.1", "h2c"}

// inboundPassthroughChains are virtualInbound's chains for traffic no
// per-port chain takes.
func inboundPassthroughChains() []*listener.FilterChain {
	return []*listener.FilterChain{
		{
			Name:             inboundBlackholeChain,
			FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(virtualInboundPort)},
			Filters:          []*listener.Filter{tcpFilter(BlackHoleCluster, BlackHoleCluster)},
		},
		{
			Name: inboundCatchAllHTTP,
			FilterChainMatch: &listener.FilterChainMatch{
				TransportProtocol: rawBufferTransport, ApplicationProtocols: plaintextHTTPALPNs,
			},
			Filters: []*listener.Filter{inboundHTTPFilter(InboundPassthroughCluster, inboundPassthroughVHost,
				InboundPassthroughCluster, InboundPassthroughCluster)},
		},
		{
			Name:             VirtualInboundListener,
			FilterChainMatch: &listener.FilterChainMatch{TransportProtocol: rawBufferTransport},
			Filters:          []*listener.Filter{tcpFilter(InboundPassthroughCluster, InboundPassthroughCluster)},
		},
	}
}

// inboundListenerFilters are virtualInbound's listener filters: the
// original destination, with mtls the TLS inspector for the workload's
// ports (inbound_mtls.go), and the HTTP inspector for the passthrough
// chains only (disabled on every port a chain names, 15006 included).
func inboundListenerFilters(ports []inboundPort, mtls bool) []*listener.ListenerFilter {
	disabled := make([]uint32, 0, len(ports)+1)
	for _, p := range ports {
		disabled = append(disabled, p.target)
	}
	filters := []*listener.ListenerFilter{{
		Name:       originalDstFilterName,
		ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&originaldst.OriginalDst{})},
	}}
	if mtls && len(ports) > 0 {
		filters = append(filters, inboundTLSInspector(disabled))
	}
	disabled = insertSorted(disabled, virtualInboundPort)
	return append(filters, &listener.ListenerFilter{
		Name:           httpInspectorName,
		ConfigType:     &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&httpinspector.HttpInspector{})},
		FilterDisabled: portsPredicate(disabled),
	})
}

// insertSorted inserts port into the sorted list ports.
func insertSorted(ports []uint32, port uint32) []uint32 {
	i := 0
	for i < len(ports) && ports[i] < port {
		i++
	}
	ports = append(ports, 0)
	copy(ports[i+1:], ports[i:])
	ports[i] = port
	return ports
}

// portsPredicate matches connections to any of ports, as istiod's
// listenerPredicateExcludePorts: one destination port range [p, p+1) each,
// OR'd when there are several.
func portsPredicate(ports []uint32) *listener.ListenerFilterChainMatchPredicate {
	rules := make([]*listener.ListenerFilterChainMatchPredicate, 0, len(ports))
	for _, p := range ports {
		rules = append(rules, &listener.ListenerFilterChainMatchPredicate{
			Rule: &listener.ListenerFilterChainMatchPredicate_DestinationPortRange{
				DestinationPortRange: &xdstype.Int32Range{Start: int32(p), End: int32(p + 1)},
			},
		})
	}
	if len(rules) == 1 {
		return rules[0]
	}
	return &listener.ListenerFilterChainMatchPredicate{Rule: &listener.ListenerFilterChainMatchPredicate_OrMatch{
		OrMatch: &listener.ListenerFilterChainMatchPredicate_MatchSet{Rules: rules},
	}}
}

// inboundPassthroughKey names the Index's one InboundPassthroughCluster
// value, shared by every sidecar scope (share.go).
type inboundPassthroughKey struct{}

// inboundPassthroughCluster forwards to the original destination from
// 127.0.0.6, which iptables does not capture again, as istiod's
// buildInboundPassthroughCluster: its default passthrough cluster (the
// downstream's HTTP protocol upstream, 5 min idle timeout, the default
// circuit breaker thresholds) renamed and bound.
func inboundPassthroughCluster() *cluster.Cluster {
	return &cluster.Cluster{
		Name:                          InboundPassthroughCluster,
		ClusterDiscoveryType:          &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST},
		LbPolicy:                      cluster.Cluster_CLUSTER_PROVIDED,
		ConnectTimeout:                durationpb.New(connectTimeout),
		CircuitBreakers:               &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{defaultThresholds()}},
		TypedExtensionProtocolOptions: passthroughHTTPOptions(),
		UpstreamBindConfig: &core.BindConfig{SourceAddress: &core.SocketAddress{
			Address: inboundPassthroughBindIP, PortSpecifier: &core.SocketAddress_PortValue{PortValue: 0},
		}},
	}
}

// passthroughHTTPOptions are istiod's passthroughHttpProtocolOptions: the
// upstream speaks the downstream's HTTP version (h2c stays h2c through the
// catch-all HTTP chain), idle connections close after 5 minutes.
func passthroughHTTPOptions() map[string]*anypb.Any {
	return map[string]*anypb.Any{httpOptionsKey: mustAny(&httpopts.HttpProtocolOptions{
		CommonHttpProtocolOptions: &core.HttpProtocolOptions{IdleTimeout: durationpb.New(5 * time.Minute)},
		UpstreamProtocolOptions: &httpopts.HttpProtocolOptions_UseDownstreamProtocolConfig{
			UseDownstreamProtocolConfig: &httpopts.HttpProtocolOptions_UseDownstreamHttpConfig{
				HttpProtocolOptions:  &core.Http1ProtocolOptions{},
				Http2ProtocolOptions: &core.Http2ProtocolOptions{},
			},
		},
	})}
}
