package translate

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

const tlsInspectorName = "envoy.filters.listener.tls_inspector"

// tcpListener builds the outbound <vip>_<port> listener of a non-HTTP
// service port: tcp_proxy to the service, or, when a VirtualService routes
// the host, one filter chain per applicable TLS route match (SNI and
// destination subnets, TLS ports only) and TCP route match (destination
// subnets), then a default chain: the first TCP route without subnets, else
// the service itself.
func (b *builder) tcpListener(svc *model.Service, p model.Port, vip string) *listener.Listener {
	l := outboundListener(OutboundListenerName(vip, p.Port), vip, p.Port, nil)
	l.FilterChains = b.tcpFilterChains(svc, p)
	for _, fc := range l.FilterChains {
		if len(fc.GetFilterChainMatch().GetServerNames()) > 0 {
			l.ListenerFilters = []*listener.ListenerFilter{{
				Name:       tlsInspectorName,
				ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspector.TlsInspector{})},
			}}
			break
		}
	}
	return l
}

func (b *builder) tcpFilterChains(svc *model.Service, p model.Port) []*listener.FilterChain {
	own := ClusterName(p.Port, "", svc.Hostname)
	fallback := &listener.FilterChain{Filters: []*listener.Filter{tcpFilter(own, own)}}
	vs := b.virtualServiceFor(svc.Hostname)
	if vs == nil {
		return []*listener.FilterChain{fallback}
	}
	rc := b.routeCtx(p.Port)
	var chains []*listener.FilterChain
	// Envoy rejects a listener with two chains of equal match; the first
	// wins, as routes are matched in order.
	seen := map[string]bool{}
	add := func(fcm *listener.FilterChainMatch, f *listener.Filter) {
		key := fmt.Sprint(fcm.GetServerNames(), fcm.GetPrefixRanges())
		if !seen[key] {
			seen[key] = true
			chains = append(chains, &listener.FilterChain{FilterChainMatch: fcm, Filters: []*listener.Filter{f}})
		}
	}
	if p.Protocol == model.ProtocolTLS || p.Protocol == model.ProtocolHTTPS {
		for _, r := range vs.spec.GetTls() {
			for _, m := range r.GetMatch() {
				if l4Applies(m.GetPort(), m.GetGateways(), m.GetSourceLabels(), m.GetSourceNamespace(), rc) {
					sni := slices.Sorted(slices.Values(m.GetSniHosts()))
					add(&listener.FilterChainMatch{ServerNames: sni, PrefixRanges: cidrRanges(m.GetDestinationSubnets())},
						b.x.weightedTCPProxy(vs, r.GetRoute(), p.Port))
				}
			}
		}
	}
	for _, r := range vs.spec.GetTcp() {
		matches := r.GetMatch()
		if len(matches) == 0 {
			matches = []*networking.L4MatchAttributes{nil}
		}
		for _, m := range matches {
			if !l4Applies(m.GetPort(), m.GetGateways(), m.GetSourceLabels(), m.GetSourceNamespace(), rc) {
				continue
			}
			f := b.x.weightedTCPProxy(vs, r.GetRoute(), p.Port)
			if len(m.GetDestinationSubnets()) == 0 {
				return append(chains, &listener.FilterChain{Filters: []*listener.Filter{f}})
			}
			add(&listener.FilterChainMatch{PrefixRanges: cidrRanges(m.GetDestinationSubnets())}, f)
		}
	}
	return append(chains, fallback)
}

// l4Applies is istiod's matchTCP and matchTLS (pilot/pkg/networking/core/
// tls.go) for a sidecar: every condition must hold — the port, if set, is
// the listener's; the gateways, if any, include "mesh"; sourceLabels and
// sourceNamespace fit the scope. Unlike an HTTP match (matchApplies,
// istiod's sourceMatchHTTP), naming "mesh" does not waive the source
// conditions.
func l4Applies(port uint32, gateways []string, labels map[string]string, ns string, rc routeCtx) bool {
	if port != 0 && port != rc.port {
		return false
	}
	if len(gateways) > 0 && !slices.Contains(gateways, meshGateway) {
		return false
	}
	return sourceApplies(labels, ns, rc)
}

// weightedTCPProxy is a tcp_proxy to one destination, or weighted clusters
// (zero weights left out) named after the VirtualService, as istiod.
func (x *Index) weightedTCPProxy(vs *virtualService, dests []*networking.RouteDestination, port uint32) *listener.Filter {
	if len(dests) == 1 {
		c := x.destinationCluster(vs.cfg.Namespace, dests[0].GetDestination(), port)
		return tcpFilter(c, c)
	}
	wc := &tcp.TcpProxy_WeightedCluster{}
	for _, d := range dests {
		if d.GetWeight() > 0 {
			wc.Clusters = append(wc.Clusters, &tcp.TcpProxy_WeightedCluster_ClusterWeight{
				Name:   x.destinationCluster(vs.cfg.Namespace, d.GetDestination(), port),
				Weight: uint32(d.GetWeight()),
			})
		}
	}
	return &listener.Filter{
		Name: tcpFilterName,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(&tcp.TcpProxy{
			StatPrefix:       vs.cfg.Name + "." + vs.cfg.Namespace,
			ClusterSpecifier: &tcp.TcpProxy_WeightedClusters{WeightedClusters: wc},
		})},
	}
}

// cidrRanges converts destinationSubnets (checked on input) to CIDR ranges;
// a bare address is a host route.
func cidrRanges(subnets []string) []*core.CidrRange {
	var out []*core.CidrRange
	for _, s := range subnets {
		if p, err := parseSubnet(s); err == nil {
			out = append(out, &core.CidrRange{AddressPrefix: p.Addr().String(), PrefixLen: wrapperspb.UInt32(uint32(p.Bits()))})
		}
	}
	return out
}

func parseSubnet(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	return p.Masked(), err
}

// checkL4Routes checks the TCP and TLS routes of a VirtualService:
// destination subnets parse and weighted routes keep a positive weight.
func checkL4Routes(spec *networking.VirtualService) (string, error) {
	type l4 struct {
		field      string
		subnets    []string
		tls, route bool
		sni        []string
		dests      []*networking.RouteDestination
	}
	var all []l4
	for i, r := range spec.GetTcp() {
		for j, m := range r.GetMatch() {
			all = append(all, l4{field: fmt.Sprintf("spec.tcp[%d].match[%d].destinationSubnets", i, j), subnets: m.GetDestinationSubnets()})
		}
		all = append(all, l4{field: fmt.Sprintf("spec.tcp[%d].route", i), route: true, dests: r.GetRoute()})
	}
	for i, r := range spec.GetTls() {
		if len(r.GetMatch()) == 0 {
			all = append(all, l4{field: fmt.Sprintf("spec.tls[%d].match", i), tls: true})
		}
		for j, m := range r.GetMatch() {
			all = append(all, l4{field: fmt.Sprintf("spec.tls[%d].match[%d].sniHosts", i, j), tls: true, sni: m.GetSniHosts()},
				l4{field: fmt.Sprintf("spec.tls[%d].match[%d].destinationSubnets", i, j), subnets: m.GetDestinationSubnets()})
		}
		all = append(all, l4{field: fmt.Sprintf("spec.tls[%d].route", i), route: true, dests: r.GetRoute()})
	}
	for _, c := range all {
		if c.tls && len(c.sni) == 0 {
			return c.field, fmt.Errorf("a TLS route match needs sniHosts")
		}
		if c.route && len(c.dests) == 0 {
			return c.field, fmt.Errorf("at least one route destination is required")
		}
		for _, s := range c.subnets {
			if _, err := parseSubnet(s); err != nil {
				return c.field, fmt.Errorf("%q is not an IP address or CIDR", s)
			}
		}
		if len(c.dests) > 1 && !slices.ContainsFunc(c.dests, func(d *networking.RouteDestination) bool { return d.GetWeight() > 0 }) {
			return c.field, fmt.Errorf("every destination has weight 0")
		}
	}
	return "", nil
}

// addListenerClusters adds the clusters that listeners reference (TCP and
// TLS route destinations) but cs lacks, so no listener names a missing one.
func (b *builder) addListenerClusters(cs []*cluster.Cluster, ls []*listener.Listener) []*cluster.Cluster {
	var refs []string
	for _, l := range ls {
		for _, r := range listenerRefs(l) {
			if r.cluster != "" {
				refs = append(refs, r.cluster)
			}
		}
	}
	if len(refs) == 0 {
		return cs // HTTP listeners name routes only
	}
	have := make(map[string]bool, len(cs))
	for _, c := range cs {
		have[c.Name] = true
	}
	for _, ref := range refs {
		port, _, host, ok := ParseClusterName(ref)
		if !ok || have[ref] {
			continue
		}
		if svc, found := b.x.byHost[host]; found {
			if p, found := svc.PortByNumber(port); found {
				if c := b.outboundCluster(ref, svc, p); c != nil {
					have[ref] = true
					cs = append(cs, c)
				}
			}
		}
	}
	return cs
}

// sniRouteFilter is the tcp_proxy of the SNI filter chain of a VIP-less TLS
// service (see sniListeners): the first applicable TLS route of the host's
// VirtualService whose sniHosts match the host, else the service itself.
func (b *builder) sniRouteFilter(svc *model.Service, port uint32) *listener.Filter {
	own := ClusterName(port, "", svc.Hostname)
	vs := b.virtualServiceFor(svc.Hostname)
	if vs == nil {
		return tcpFilter(own, own)
	}
	rc := b.routeCtx(port)
	for _, r := range vs.spec.GetTls() {
		for _, m := range r.GetMatch() {
			if len(m.GetDestinationSubnets()) > 0 || !l4Applies(m.GetPort(), m.GetGateways(), m.GetSourceLabels(), m.GetSourceNamespace(), rc) {
				continue
			}
			if slices.ContainsFunc(m.GetSniHosts(), func(h string) bool { return model.HostMatches(h, svc.Hostname) }) {
				return b.x.weightedTCPProxy(vs, r.GetRoute(), port)
			}
		}
	}
	return tcpFilter(own, own)
}
