package translate

import (
	"maps"
	"slices"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	httpinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/http_inspector/v3"
	originaldst "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/original_dst/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// The passthrough side of virtualInbound, as istiod 1.29's
// buildInboundPassthroughChains and inboundVirtualListener
// (pilot/pkg/networking/core/listener_inbound.go) build it: every sidecar
// gets it, whether or not its workload backs a service, so that inbound
// traffic iptables redirects to 15006 is delivered to the application
// instead of dropped. Chains, in istiod's order:
//   - virtualInbound-blackhole: connections to 15006 itself → BlackHoleCluster
//     (a connection to the listener's own port would loop);
//   - the passthrough chains of the workload's mode (no destination port
//     match), then of each port of its portLevelMtls no service declares
//     (matching that port), as istiod's ForPassthrough: for plaintext
//     (DISABLE, or PERMISSIVE without Istio's agent)
//     virtualInbound-catchall-http (plaintext HTTP/1.1 or h2c, the HTTP
//     inspector's verdict → HTTP connection manager) and virtualInbound
//     (any other plaintext bytes → tcp_proxy), both to
//     InboundPassthroughCluster; with mTLS (PERMISSIVE, STRICT with the
//     agent) istiod's chains terminating Istio mTLS too (passthroughMTLSChains);
//
// then the workload's per-port chains (inbound.go), which match on the
// destination port and win over the passthrough chains. Inspectors run
// only where a chain needs them (inboundListenerFilters), as istiod's
// populateListenerFilters: traffic to a declared plaintext port is not
// delayed by them.
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

// Istio's mTLS ALPNs by the client's protocol, istiod's mtlsHTTPALPNs and
// mtlsTCPWithMxcALPNs: they pick the passthrough chain of mTLS traffic.
var (
	mtlsHTTPALPNs       = []string{"istio-http/1.0", "istio-http/1.1", "istio-h2"}
	mtlsTCPWithMxcALPNs = []string{"istio-peer-exchange", "istio"}
)

// passthroughPort is one set of passthrough chains: the workload's (port
// 0, no destination port match) or a port of its portLevelMtls no service
// declares, with the mode in force there.
type passthroughPort struct {
	port uint32
	mode mtlsMode
}

// inboundPassthroughChains are virtualInbound's chains for traffic no
// per-port chain takes: the blackhole chain, then each passthrough port's
// chains for its mode (peerauthn_inbound.go).
func inboundPassthroughChains(pts []passthroughPort, agent bool) []*listener.FilterChain {
	chains := []*listener.FilterChain{{
		Name:             inboundBlackholeChain,
		FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(virtualInboundPort)},
		Filters:          []*listener.Filter{tcpFilter(BlackHoleCluster, BlackHoleCluster)},
	}}
	for _, pt := range pts {
		chains = append(chains, passthroughChains(pt, agent)...)
	}
	return chains
}

// plaintextPassthroughChains deliver plaintext to the original
// destination (istiod's inboundPlainTextFilterChainMatchOptions).
func plaintextPassthroughChains(port uint32) []*listener.FilterChain {
	return []*listener.FilterChain{
		{
			Name:             inboundCatchAllHTTP,
			FilterChainMatch: passthroughMatch(port, rawBufferTransport, plaintextHTTPALPNs),
			Filters:          []*listener.Filter{hcmFilter(passthroughHCM())},
		},
		{
			Name:             VirtualInboundListener,
			FilterChainMatch: passthroughMatch(port, rawBufferTransport, nil),
			Filters:          []*listener.Filter{tcpFilter(InboundPassthroughCluster, InboundPassthroughCluster)},
		},
	}
}

// passthroughMTLSChains terminate Istio mTLS and deliver to the original
// destination: for STRICT istiod's inboundStrictFilterChainMatchOptions
// (HTTP over mTLS, any other TLS; nothing else matches), else its
// inboundPermissiveFilterChainMatchWithMxcOptions (HTTP over mTLS,
// plaintext HTTP, TCP over mTLS, plaintext, and TLS without Istio's ALPN
// passed through as it came).
func passthroughMTLSChains(port uint32, strict bool) []*listener.FilterChain {
	httpMTLS := &listener.FilterChain{
		Name:             inboundCatchAllHTTP,
		FilterChainMatch: passthroughMatch(port, tlsTransport, mtlsHTTPALPNs),
		TransportSocket:  inboundMTLSSocket(inboundHTTPALPNs),
		Filters:          []*listener.Filter{hcmFilter(withXFCC(passthroughHCM()))},
	}
	tcpMTLS := &listener.FilterChain{
		Name:             VirtualInboundListener,
		FilterChainMatch: passthroughMatch(port, tlsTransport, mtlsTCPWithMxcALPNs),
		TransportSocket:  inboundMTLSSocket(inboundTCPALPNs),
		Filters:          []*listener.Filter{tcpFilter(InboundPassthroughCluster, InboundPassthroughCluster)},
	}
	if strict {
		tcpMTLS.FilterChainMatch.ApplicationProtocols = nil
		return []*listener.FilterChain{httpMTLS, tcpMTLS}
	}
	plain := plaintextPassthroughChains(port)
	tlsAsIs := &listener.FilterChain{
		Name:             VirtualInboundListener,
		FilterChainMatch: passthroughMatch(port, tlsTransport, nil),
		Filters:          []*listener.Filter{tcpFilter(InboundPassthroughCluster, InboundPassthroughCluster)},
	}
	return []*listener.FilterChain{httpMTLS, plain[0], tcpMTLS, plain[1], tlsAsIs}
}

// passthroughMatch matches a transport protocol and ALPNs, on one
// destination port unless port is 0.
func passthroughMatch(port uint32, transport string, alpns []string) *listener.FilterChainMatch {
	m := &listener.FilterChainMatch{TransportProtocol: transport, ApplicationProtocols: alpns}
	if port != 0 {
		m.DestinationPort = wrapperspb.UInt32(port)
	}
	return m
}

// passthroughHCM is the connection manager of the catch-all HTTP chains.
func passthroughHCM() *hcm.HttpConnectionManager {
	return inboundHCM(InboundPassthroughCluster, inboundPassthroughVHost, InboundPassthroughCluster, InboundPassthroughCluster)
}

// inboundListenerFilters are virtualInbound's listener filters: the
// original destination, then the TLS and HTTP inspectors where chains
// need them, as istiod's populateListenerFilters: a destination port
// (0: chains without one) needs the TLS inspector when one of its chains
// matches TLS, the HTTP inspector when one matches plaintext HTTP's ALPNs.
func inboundListenerFilters(chains []*listener.FilterChain) []*listener.ListenerFilter {
	needTLS, needHTTP := map[uint32]bool{}, map[uint32]bool{}
	for _, fc := range chains {
		m := fc.GetFilterChainMatch()
		port := m.GetDestinationPort().GetValue()
		needTLS[port] = needTLS[port] || m.GetTransportProtocol() == tlsTransport
		needHTTP[port] = needHTTP[port] || slices.ContainsFunc(m.GetApplicationProtocols(),
			func(a string) bool { return slices.Contains(plaintextHTTPALPNs, a) })
	}
	filters := []*listener.ListenerFilter{{
		Name:       originalDstFilterName,
		ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&originaldst.OriginalDst{})},
	}}
	if f := inspector(tlsInspectorName, &tlsinspector.TlsInspector{}, needTLS); f != nil {
		filters = append(filters, f)
	}
	if f := inspector(httpInspectorName, &httpinspector.HttpInspector{}, needHTTP); f != nil {
		filters = append(filters, f)
	}
	return filters
}

// inspector is a listener filter enabled on the destination ports whose
// need is true, as istiod's buildTLSInspector: when the chains without a
// port need it, everywhere but the ports that do not; else on the ports
// that do only; nil when none does.
func inspector(name string, cfg proto.Message, need map[uint32]bool) *listener.ListenerFilter {
	f := &listener.ListenerFilter{Name: name, ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(cfg)}}
	var on, off []uint32
	for _, p := range slices.Sorted(maps.Keys(need)) {
		switch {
		case p == 0:
		case need[p]:
			on = append(on, p)
		default:
			off = append(off, p)
		}
	}
	switch {
	case need[0] && len(off) > 0:
		f.FilterDisabled = portsPredicate(off)
	case need[0]:
	case len(on) > 0:
		f.FilterDisabled = &listener.ListenerFilterChainMatchPredicate{
			Rule: &listener.ListenerFilterChainMatchPredicate_NotMatch{NotMatch: portsPredicate(on)}}
	default:
		return nil
	}
	return f
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
