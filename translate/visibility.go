package translate

import (
	"fmt"
	"sort"

	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// Reasons a service or VirtualService is (not) visible to a scope, as
// reported by ExplainScope.
const (
	reasonNoSidecar   = "no Sidecar: exported to namespace"
	reasonNotExported = "not exported to namespace"
)

// serviceView is one service as a scope sees it: svc is the service with
// only the ports the scope imports; reason says why it is visible or not.
type serviceView struct {
	svc     *model.Service
	visible bool
	reason  string
}

// scopeServices decides, for every service of the mesh, whether the scope
// sees it: it must be exported to the scope's namespace and, when a Sidecar
// applies, imported by one of its egress hosts or be a destination of a
// VirtualService one imports (istiod infers those). Routers ignore Sidecars
// but, with Options.FilterGatewayClusters, see only the services their
// Gateways' VirtualServices route to. Sorted by hostname.
func (b *builder) scopeServices() []serviceView {
	ns := b.scope.Namespace
	var gw map[string]string
	if b.scope.Type == model.Router && b.x.filterGatewayClusters {
		gw = b.x.gatewayHosts(b.scope)
	}
	var out []serviceView
	index := map[string]int{}
	for _, svc := range b.x.services {
		v := serviceView{svc: svc}
		switch {
		case !b.x.serviceExported(svc, ns):
			v.reason = reasonNotExported
		case gw != nil:
			v.reason, v.visible = gw[svc.Hostname], gw[svc.Hostname] != ""
			if !v.visible {
				v.reason = "not routed by a VirtualService bound to this gateway's Gateways (FilterGatewayClusters)"
			}
		case b.sc.egress == nil:
			v.visible, v.reason = true, reasonNoSidecar
		default:
			host, ports, ok := b.sc.importService(svc, b.x.domain)
			v.reason = fmt.Sprintf("no egress host of Sidecar %s matches", b.sc.name())
			if ok {
				v.svc, v.visible, v.reason = ports.apply(svc), true, "egress host "+host
			}
		}
		index[svc.Hostname] = len(out)
		out = append(out, v)
	}
	if b.sc.egress != nil {
		b.inferFromVirtualServices(out, index)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].svc.Hostname < out[j].svc.Hostname })
	return out
}

// inferFromVirtualServices makes visible the exported destinations of the
// VirtualServices a Sidecar imports, on the ports of the egress listeners
// importing them, as istiod does.
func (b *builder) inferFromVirtualServices(views []serviceView, index map[string]int) {
	for _, vs := range b.x.vsAll {
		_, ports, ok := b.vsVisible(vs)
		if !ok {
			continue
		}
		for _, host := range vsDestinationHosts(vs.spec, vs.cfg.Namespace, b.x.domain) {
			i, known := index[host]
			if !known || views[i].visible || views[i].reason == reasonNotExported {
				continue
			}
			if svc := ports.apply(views[i].svc); svc != nil {
				views[i] = serviceView{svc: svc, visible: true,
					reason: "destination of VirtualService " + vs.cfg.Key()}
			}
		}
	}
}

// visibleServices returns the services the scope sees, sorted by hostname.
func (b *builder) visibleServices() []*model.Service {
	var out []*model.Service
	for _, v := range b.scopeServices() {
		if v.visible {
			out = append(out, v.svc)
		}
	}
	return out
}

// vsVisible reports whether the scope sees a mesh VirtualService: exported
// to its namespace (the MeshConfig's defaultVirtualServiceExportTo when it
// has no exportTo) and, when a Sidecar applies, imported by an egress host.
func (b *builder) vsVisible(vs *virtualService) (reason string, ports portFilter, ok bool) {
	if !b.x.vsExported(vs, b.scope.Namespace) {
		return reasonNotExported, ports, false
	}
	if b.sc.egress == nil {
		return reasonNoSidecar, portFilter{all: true}, true
	}
	host, ports, ok := b.sc.importVirtualService(vs, b.x.domain)
	if !ok {
		return fmt.Sprintf("no egress host of Sidecar %s matches", b.sc.name()), ports, false
	}
	return "egress host " + host, ports, true
}

// virtualServiceFor returns the VirtualService routing host for the scope:
// among those it sees, exact claims before wildcard ones, then by vsRank,
// then the oldest. nil when none.
func (b *builder) virtualServiceFor(host string) *virtualService {
	var best *virtualService
	bestRank, bestExact := 0, false
	for _, vs := range b.x.virtualServiceCandidates(host) {
		if _, _, ok := b.vsVisible(vs); !ok {
			continue
		}
		exact, rank := false, vsRank(vs, b.scope.Namespace)
		for _, h := range vs.hosts {
			exact = exact || h == host
		}
		if best == nil || (exact && !bestExact) || (exact == bestExact && rank < bestRank) {
			best, bestRank, bestExact = vs, rank, exact
		}
	}
	return best
}

// vsDestinationHosts returns the destination hosts (routes and mirrors of
// HTTP, TCP and TLS routes) of a VirtualService of namespace ns, resolved.
func vsDestinationHosts(spec *networking.VirtualService, ns, domain string) []string {
	var out []string
	add := func(d *networking.Destination) {
		if d != nil && d.GetHost() != "" {
			out = append(out, resolveHost(d.GetHost(), ns, domain))
		}
	}
	for _, r := range spec.GetHttp() {
		for _, rd := range r.GetRoute() {
			add(rd.GetDestination())
		}
		add(r.GetMirror())
		for _, m := range r.GetMirrors() {
			add(m.GetDestination())
		}
	}
	for _, r := range spec.GetTcp() {
		for _, rd := range r.GetRoute() {
			add(rd.GetDestination())
		}
	}
	for _, r := range spec.GetTls() {
		for _, rd := range r.GetRoute() {
			add(rd.GetDestination())
		}
	}
	return out
}
