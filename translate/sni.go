package translate

import (
	"slices"
	"sort"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"

	"github.com/meshd/meshd/internal/model"
)

// sniListeners builds, as istiod, a 0.0.0.0_<port> listener for the TLS and
// HTTPS ports of services without an IPv4 VIP (typically ServiceEntries of
// external TLS hosts such as a core banking system): one filter chain per
// service matching its host as SNI, to its cluster, and a default chain to
// the outbound default (PassthroughCluster, or BlackHoleCluster under
// REGISTRY_ONLY). Ports that also carry HTTP services are left to the HTTP
// listener; reserved ports get none (reserved.go).
func (b *builder) sniListeners(services []*model.Service, httpPorts []uint32) []*listener.Listener {
	byPort := map[uint32][]*model.Service{}
	for _, svc := range services {
		if len(svc.VIPs) > 0 && isIPv4(svc.VIPs[0]) {
			continue
		}
		for _, p := range svc.Ports {
			if (p.Protocol == model.ProtocolTLS || p.Protocol == model.ProtocolHTTPS) && !slices.Contains(httpPorts, p.Port) &&
				!outboundReserved(svc, p) {
				byPort[p.Port] = append(byPort[p.Port], svc)
			}
		}
	}
	ports := sortedPorts(byPort)
	out := make([]*listener.Listener, 0, len(ports))
	for _, port := range ports {
		svcs := byPort[port]
		sort.Slice(svcs, func(i, j int) bool { return svcs[i].Hostname < svcs[j].Hostname })
		l := outboundListener(OutboundListenerName("0.0.0.0", port), "0.0.0.0", port, nil)
		l.FilterChains = nil
		l.ListenerFilters = []*listener.ListenerFilter{{
			Name:       tlsInspectorName,
			ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspector.TlsInspector{})},
		}}
		for _, svc := range svcs {
			l.FilterChains = append(l.FilterChains, &listener.FilterChain{
				FilterChainMatch: &listener.FilterChainMatch{ServerNames: []string{svc.Hostname}},
				Filters:          []*listener.Filter{b.sniRouteFilter(svc, port)}, // TLS VirtualService routes: tcproute.go
			})
		}
		def := b.outboundDefaultCluster()
		l.FilterChains = append(l.FilterChains, &listener.FilterChain{
			Name: "PassthroughFilterChain", Filters: []*listener.Filter{tcpFilter(def, def)},
		})
		out = append(out, l)
	}
	return out
}
