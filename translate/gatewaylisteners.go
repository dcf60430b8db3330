package translate

import (
	"fmt"
	"slices"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
)

// gatewayTransportSocketConnectTimeout is istiod's default
// PILOT_GATEWAY_TRANSPORT_SOCKET_CONNECT_TIMEOUT, set on every gateway
// filter chain (it bounds TLS handshakes).
const gatewayTransportSocketConnectTimeout = 15 * time.Second

// gatewayChain is a filter chain being added to a gateway listener: what
// it is (desc), the route configuration it names (HTTP), and how to
// report it when an earlier chain has the same match.
type gatewayChain struct {
	fc        *listener.FilterChain
	desc      string
	route     *route.RouteConfiguration
	duplicate func(other string)
	// secrets are the SDS secrets the chain's TLS context fetches over
	// ADS (gatewaytls.go).
	secrets []*tlsv3.Secret
}

// gatewayListeners builds a router's listeners from its merged Gateways,
// as istiod's buildGatewayListeners: one listener 0.0.0.0_<port> per
// listener port, binding it, with a filter chain per server kind: HTTP
// servers share one HTTP connection manager taking route configuration
// http.<port> over RDS; TCP servers proxy to the destination of the first
// bound VirtualService's matching TCP route; servers terminating TLS get a
// chain each, by SNI, with their TLS context (gatewaytls.go); TLS
// passthrough servers get a chain per matching TLS route, by SNI, behind a
// TLS inspector. A listener left without chains is not emitted. It returns
// the listeners and the route configurations they name (gatewayroutes.go);
// the secrets the chains fetch are added to b.gwSecrets.
func (b *builder) gatewayListeners(m *mergedGateway) ([]*listener.Listener, []*route.RouteConfiguration) {
	var out []*listener.Listener
	var routes []*route.RouteConfiguration
	byPort := map[uint32]*listener.Listener{}
	seen := map[uint32]map[string]string{} // listener port -> chain match -> what holds it
	sni := map[uint32]map[string]string{}  // listener port -> SNI host -> VirtualService
	for _, sp := range m.ports {
		ms := m.servers[sp]
		name := OutboundListenerName("0.0.0.0", sp.number)
		var chains []gatewayChain
		if first := ms.servers[0]; first.proto.IsHTTP() {
			chains = append(chains, gatewayChain{
				fc:    &listener.FilterChain{Filters: []*listener.Filter{gatewayHTTPFilter(name, ms.routeName)}},
				desc:  "the HTTP servers' filter chain",
				route: b.gatewayRouteConfig(ms.routeName, m.byRoute[ms.routeName]),
				duplicate: func(other string) {
					b.gwErrs.gateway(first, ".port", "port %d: the HTTP servers' filter chain matches as %s does; "+
						"the HTTP servers of the port are left out", first.port, other)
				},
			})
		} else {
			for _, bs := range ms.servers {
				if bs.pending == "" && terminatesTLS(bs.server.GetTls()) {
					if c := b.gatewayTerminatingChain(bs, name, m); c != nil {
						chains = append(chains, *c)
					}
					continue
				}
				chains = append(chains, b.gatewayL4Chains(bs, sni)...)
			}
		}
		l := byPort[sp.number]
		for _, c := range chains {
			if l == nil {
				l = gatewayListener(name, sp.number)
				byPort[sp.number] = l
				seen[sp.number] = map[string]string{}
				out = append(out, l)
			}
			c.fc.TransportSocketConnectTimeout = durationpb.New(gatewayTransportSocketConnectTimeout)
			key := fmt.Sprint(c.fc.GetFilterChainMatch().GetServerNames())
			if other, dup := seen[sp.number][key]; dup {
				c.duplicate(other)
				continue
			}
			seen[sp.number][key] = c.desc
			l.FilterChains = append(l.FilterChains, c.fc)
			if c.route != nil {
				routes = append(routes, c.route)
			}
			b.gwSecrets = append(b.gwSecrets, c.secrets...)
		}
	}
	for _, l := range out {
		if slices.ContainsFunc(l.FilterChains, func(fc *listener.FilterChain) bool {
			return len(fc.GetFilterChainMatch().GetServerNames()) > 0
		}) {
			l.ListenerFilters = []*listener.ListenerFilter{{
				Name:       tlsInspectorName,
				ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspector.TlsInspector{})},
			}}
		}
	}
	return out, routes
}

// gatewayListener is istiod's buildGatewayListener for TCP: outbound
// direction, binding 0.0.0.0:<port> (a gateway listens on its ports;
// istiod leaves bind_to_port unset, whose default is the same), one
// connection accepted per socket event (istiod's default
// MAX_CONNECTIONS_PER_SOCKET_EVENT_LOOP).
func gatewayListener(name string, port uint32) *listener.Listener {
	return &listener.Listener{
		Name:                                 name,
		Address:                              socketAddress("0.0.0.0", port),
		BindToPort:                           wrapperspb.Bool(true),
		TrafficDirection:                     core.TrafficDirection_OUTBOUND,
		MaxConnectionsToAcceptPerSocketEvent: wrapperspb.UInt32(1),
	}
}

// gatewayHTTPFilter is the HTTP connection manager of a gateway's HTTP
// servers, as istiod's buildGatewayConnectionManager: the gateway is the
// edge, so it uses the client's address (use_remote_address, no trusted
// hops) and sanitizes x-forwarded-client-cert; routes over RDS; the
// sidecar's HTTP filters (fault, CORS, router).
func gatewayHTTPFilter(listenerName, routeName string) *listener.Filter {
	m := httpConnectionManager("outbound_"+listenerName, routeName, sidecarHTTPFilters())
	m.UseRemoteAddress = wrapperspb.Bool(true)
	m.ForwardClientCertDetails = hcm.HttpConnectionManager_SANITIZE_SET
	m.SetCurrentClientCertDetails = &hcm.HttpConnectionManager_SetCurrentClientCertDetails{
		Subject: wrapperspb.Bool(true), Cert: true, Dns: true, Uri: true,
	}
	m.HttpProtocolOptions = &core.Http1ProtocolOptions{}
	return &listener.Filter{Name: hcmFilterName, ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}}
}

// gatewayL4Chains builds the filter chains of a server that is not HTTP,
// as istiod's createGatewayTCPFilterChainOpts: plain TCP, or TLS
// passthrough. Servers not served yet (pending) get none.
func (b *builder) gatewayL4Chains(bs *boundServer, sni map[uint32]map[string]string) []gatewayChain {
	switch {
	case bs.pending != "":
		return nil
	case bs.server.GetTls() == nil:
		if c := b.gatewayTCPChain(bs); c != nil {
			return []gatewayChain{*c}
		}
		return nil
	}
	return b.gatewayTLSChains(bs, sni)
}

// gatewayTCPChain is istiod's buildGatewayNetworkFiltersFromTCPRoutes: the
// first VirtualService bound to the server's Gateway whose hosts match the
// server's and that has a TCP route whose matches apply (port, gateways)
// gives the one filter chain; nil when none does.
func (b *builder) gatewayTCPChain(bs *boundServer) *gatewayChain {
	port := bs.server.GetPort().GetNumber()
	for _, vs := range b.gatewayVirtualServices(bs.gw.name) {
		if !bindsServer(bs.server.GetHosts(), vs) {
			continue
		}
		for i, r := range vs.spec.GetTcp() {
			if !l4MultiMatch(r.GetMatch(), port, bs.gw.name) || len(r.GetRoute()) == 0 {
				continue
			}
			field := fmt.Sprintf("spec.tcp[%d]", i)
			if !b.destinationsKnown(vs, l4Destinations(field, r.GetRoute()), bs) {
				// istiod stops at the first applicable route; its
				// destination is unknown (reported), so the server gets no
				// chain rather than another route istiod would not take.
				return nil
			}
			f := b.x.weightedTCPProxy(vs.virtualService, r.GetRoute(), port)
			return &gatewayChain{
				fc:   &listener.FilterChain{Filters: []*listener.Filter{f}},
				desc: fmt.Sprintf("the TCP route %d of VirtualService %s", i, vs.cfg.Key()),
				duplicate: func(other string) {
					b.gwErrs.vs(vs, field, "the TCP route on port %d of Gateway %s has the same filter chain match as %s; it is ignored",
						bs.port, bs.gw.name, other)
				},
			}
		}
	}
	return nil
}

// gatewayTLSChains is istiod's buildGatewayNetworkFiltersFromTLSRoutes for
// PASSTHROUGH servers: for every VirtualService bound to the server's
// Gateway whose hosts match the server's, every TLS route with
// destinations and every match that applies (port, gateways) gives a
// filter chain matching its sniHosts ("*" matches any SNI) to a tcp_proxy.
// A match naming an SNI host already routed on the listener port is
// skipped and reported, as istiod skips it (Envoy rejects equal matches).
func (b *builder) gatewayTLSChains(bs *boundServer, sni map[uint32]map[string]string) []gatewayChain {
	port := bs.server.GetPort().GetNumber()
	var out []gatewayChain
	for _, vs := range b.gatewayVirtualServices(bs.gw.name) {
		if !bindsServer(bs.server.GetHosts(), vs) {
			continue
		}
		for i, r := range vs.spec.GetTls() {
			if len(r.GetRoute()) == 0 {
				continue
			}
			for j, m := range r.GetMatch() {
				if !l4SingleMatch(m.GetPort(), m.GetGateways(), port, bs.gw.name) {
					continue
				}
				field := fmt.Sprintf("spec.tls[%d].match[%d].sniHosts", i, j)
				if !b.destinationsKnown(vs, l4Destinations(fmt.Sprintf("spec.tls[%d]", i), r.GetRoute()), bs) ||
					!b.claimSNI(vs, field, m.GetSniHosts(), bs, sni) {
					continue
				}
				fc := &listener.FilterChain{Filters: []*listener.Filter{b.x.weightedTCPProxy(vs.virtualService, r.GetRoute(), port)}}
				if !slices.Contains(m.GetSniHosts(), "*") {
					// A name listed twice would make Envoy see overlapping
					// filter chain matches.
					fc.FilterChainMatch = &listener.FilterChainMatch{ServerNames: slices.Compact(slices.Sorted(slices.Values(m.GetSniHosts())))}
				}
				desc := fmt.Sprintf("TLS route %d (SNI %v) of VirtualService %s", i, m.GetSniHosts(), vs.cfg.Key())
				out = append(out, gatewayChain{fc: fc, desc: desc, duplicate: func(other string) {
					b.gwErrs.vs(vs, field, "the filter chain of this match on port %d of Gateway %s matches as %s does; it is ignored",
						bs.port, bs.gw.name, other)
				}})
			}
		}
	}
	return out
}

// claimSNI is istiod's CheckDuplicates over the SNI hosts of the TLS
// routes on a listener port: false (and reported) when one is taken.
func (b *builder) claimSNI(vs *gatewayVirtualService, field string, hosts []string, bs *boundServer, sni map[uint32]map[string]string) bool {
	known := sni[bs.port]
	if known == nil {
		known = map[string]string{}
		sni[bs.port] = known
	}
	for _, h := range hosts {
		if owner, ok := known[h]; ok {
			b.gwErrs.vs(vs, field, "SNI host %q on port %d of Gateway %s is already routed by VirtualService %s; this match is ignored",
				h, bs.port, bs.gw.name, owner)
			return false
		}
	}
	for _, h := range hosts {
		known[h] = vs.cfg.Key()
	}
	return true
}

// l4MultiMatch is istiod's: no match conditions match; else any one.
func l4MultiMatch(ms []*networking.L4MatchAttributes, port uint32, gw string) bool {
	for _, m := range ms {
		if l4SingleMatch(m.GetPort(), m.GetGateways(), port, gw) {
			return true
		}
	}
	return len(ms) == 0
}

// l4SingleMatch is istiod's: the match's port, if set, is the server's,
// and its gateways, if any, include the server's Gateway. Source labels
// and namespaces do not apply on gateways.
func l4SingleMatch(matchPort uint32, gateways []string, port uint32, gw string) bool {
	return (matchPort == 0 || matchPort == port) && (len(gateways) == 0 || slices.Contains(gateways, gw))
}
