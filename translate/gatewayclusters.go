package translate

import (
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// gatewayHosts implements Options.FilterGatewayClusters (istiod's
// PILOT_FILTER_GATEWAY_CLUSTER_CONFIG) for a router scope: it maps the
// hostname of every service the router's routes can reach to the reason.
// Those are the destinations (HTTP routes and mirrors, TCP and TLS routes,
// one level of delegates) of the VirtualServices exported to the router's
// namespace and bound (spec.gateways) to a Gateway of the router
// (gatewaysFor: its selector matches the router's labels). All ports and
// subsets of such a service are kept.
func (x *Index) gatewayHosts(scope model.Scope) map[string]string {
	gateways := map[string]bool{}
	for _, gw := range x.gatewaysFor(scope) {
		gateways[gw.name] = true
	}
	out := map[string]string{}
	for _, cfg := range x.snap.Configs(model.KindVirtualService) {
		spec := cfg.Spec.(*networking.VirtualService)
		gw := boundGateway(spec.GetGateways(), cfg.Namespace, gateways)
		if gw == "" || !exportedTo(x.vsExportTo(spec.GetExportTo()), cfg.Namespace, scope.Namespace) {
			continue
		}
		reason := "destination of VirtualService " + cfg.Key() + " bound to Gateway " + gw
		for _, h := range x.gatewayDestinations(cfg, spec) {
			if _, ok := out[h]; !ok {
				out[h] = reason
			}
		}
	}
	return out
}

// boundGateway returns the first of a VirtualService's gateways (resolved
// as resolveGatewayName resolves them) that is in selected.
func boundGateway(names []string, ns string, selected map[string]bool) string {
	for _, g := range resolvedGateways(names, ns) {
		if selected[g] {
			return g
		}
	}
	return ""
}

// gatewayDestinations returns the resolved destination hosts of a gateway
// VirtualService and of the delegates its HTTP routes name.
func (x *Index) gatewayDestinations(cfg *model.Config, spec *networking.VirtualService) []string {
	out := vsDestinationHosts(spec, cfg.Namespace, x.domain)
	for _, r := range spec.GetHttp() {
		d := r.GetDelegate()
		if d == nil {
			continue
		}
		ns := d.GetNamespace()
		if ns == "" {
			ns = cfg.Namespace
		}
		if o, ok := x.snap.Object(model.KindVirtualService, ns, d.GetName()); ok {
			out = append(out, vsDestinationHosts(o.(*model.Config).Spec.(*networking.VirtualService), ns, x.domain)...)
		}
	}
	return out
}
