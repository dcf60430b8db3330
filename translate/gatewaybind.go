package translate

import (
	"fmt"
	"slices"
)

// Which Gateways a VirtualService binds to, and whether they serve any of
// its hosts. istiod binds silently: a VirtualService naming a Gateway that
// does not exist, or whose hosts match none of the Gateway's servers, just
// routes nothing there. istioctl analyze reports both (IST0101
// ReferencedResourceNotFound and IST0132 VirtualServiceHostNotFoundInGateway,
// pkg/config/analysis/analyzers/virtualservice/gateways.go); meshd reports
// them as config errors on the VirtualService, and /debug/gatewayz lists
// them per gateway proxy (gatewayexplain.go).

// gatewayByName returns the Gateway "namespace/name", nil when there is none.
func (x *Index) gatewayByName(name string) *gatewayConfig {
	for _, gw := range x.gateways {
		if gw.name == name {
			return gw
		}
	}
	return nil
}

// servesVirtualService reports whether a host of some server of gw matches
// a host of vs, as istioctl's vsHostInGateway decides it: server hosts as
// the VirtualService's namespace sees them ("ns/host" only for namespace
// ns), a wildcard on either side covering the other.
func (gw *gatewayConfig) servesVirtualService(vs *gatewayVirtualService) bool {
	return slices.ContainsFunc(gw.servers, func(s *gatewayServer) bool { return bindsServer(s.server.GetHosts(), vs) })
}

// allServerHosts lists the hosts of the servers of gw, each once, in order.
func (gw *gatewayConfig) allServerHosts() []string {
	var out []string
	for _, s := range gw.servers {
		for _, h := range s.server.GetHosts() {
			if !slices.Contains(out, h) {
				out = append(out, h)
			}
		}
	}
	return out
}

// reportGatewayBindings reports, for every accepted VirtualService bound to
// named gateways, each of spec.gateways that names no Gateway, or a Gateway
// none of whose server hosts matches the VirtualService's hosts.
func (x *Index) reportGatewayBindings() {
	for _, vs := range x.gatewayVS {
		cfg := vs.cfg
		for i, g := range vs.spec.GetGateways() {
			if g == meshGateway {
				continue
			}
			field := fmt.Sprintf("spec.gateways[%d]", i)
			gw := x.gatewayByName(g)
			switch {
			case gw == nil:
				x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field,
					"Gateway %s does not exist; nothing is routed through it (istioctl analyze: IST0101)", g)
			case !gw.servesVirtualService(vs):
				x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field,
					"no host of the VirtualService %v is a host of a server of Gateway %s %v (server hosts \"ns/host\" bind "+
						"only VirtualServices of namespace ns); the Gateway routes none of them (istioctl analyze: IST0132)",
					vs.hosts, g, gw.allServerHosts())
			}
		}
	}
}
