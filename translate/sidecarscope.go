package translate

import (
	"strings"

	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// SidecarSource says why a Sidecar resource applies to a scope (or why none does).
type SidecarSource string

// Sidecar sources, in istiod's order of precedence.
const (
	// SidecarByWorkloadSelector: a Sidecar of the scope's namespace whose
	// workloadSelector matches the scope's labels (the oldest such).
	SidecarByWorkloadSelector SidecarSource = "workloadSelector"
	// SidecarNamespaceDefault: the oldest Sidecar of the scope's namespace
	// without workloadSelector.
	SidecarNamespaceDefault SidecarSource = "namespace default"
	// SidecarRootNamespace: the oldest Sidecar without workloadSelector in
	// the root namespace (MeshConfig rootNamespace, default istio-system).
	SidecarRootNamespace SidecarSource = "root namespace"
	// SidecarNone: no Sidecar applies; the scope sees everything exported
	// to its namespace.
	SidecarNone SidecarSource = "none"
	// SidecarIgnoredForGateway: routers (gateways) ignore Sidecar resources,
	// as in istiod.
	SidecarIgnoredForGateway SidecarSource = "gateway: Sidecar resources do not apply"
)

// sidecarScope is the Sidecar resource that applies to one scope, its
// egress hosts parsed. With no Sidecar, egress is nil and the scope sees
// everything exported to its namespace.
type sidecarScope struct {
	cfg    *model.Config
	spec   *networking.Sidecar
	source SidecarSource
	egress []egressListener
}

// egressListener is one spec.egress entry: the hosts it imports, limited to
// one port when port is not 0.
type egressListener struct {
	port  uint32
	hosts []egressHost
}

// egressHost is one "namespace/dnsName" egress host. ns is resolved: "."
// becomes the scope's namespace (for a root-namespace Sidecar too, as in
// istiod); "*" is any namespace; "~" none.
type egressHost struct {
	raw, ns, name string
}

// sidecarFor returns the Sidecar that applies to scope, as istiod picks it:
// in the scope's namespace the oldest one whose workloadSelector matches the
// scope's labels, else the oldest one without selector; else the root
// namespace's oldest one without selector. Routers ignore Sidecars.
func (x *Index) sidecarFor(scope model.Scope) sidecarScope {
	if scope.Type == model.Router {
		return sidecarScope{source: SidecarIgnoredForGateway}
	}
	labels := scope.LabelMap()
	var local, root *model.Config
	for _, cfg := range x.snap.Configs(model.KindSidecar) {
		sel := cfg.Spec.(*networking.Sidecar).GetWorkloadSelector().GetLabels()
		switch {
		case cfg.Namespace == scope.Namespace && len(sel) > 0:
			if labels != nil && labelsMatch(sel, labels) {
				return newSidecarScope(cfg, SidecarByWorkloadSelector, scope.Namespace)
			}
		case cfg.Namespace == scope.Namespace:
			if local == nil {
				local = cfg
			}
		case cfg.Namespace == x.rootNamespace && len(sel) == 0:
			if root == nil {
				root = cfg
			}
		}
	}
	switch {
	case local != nil:
		return newSidecarScope(local, SidecarNamespaceDefault, scope.Namespace)
	case root != nil:
		return newSidecarScope(root, SidecarRootNamespace, scope.Namespace)
	}
	return sidecarScope{source: SidecarNone}
}

// newSidecarScope parses the egress listeners of a Sidecar applied to
// namespace ns. A Sidecar without egress imports "*/*", as in istiod. An
// egress port limits the listener to that port, except for protocol
// HTTP_PROXY (istiod's generic egress proxy).
func newSidecarScope(cfg *model.Config, source SidecarSource, ns string) sidecarScope {
	spec := cfg.Spec.(*networking.Sidecar)
	s := sidecarScope{cfg: cfg, spec: spec, source: source}
	egress := spec.GetEgress()
	if len(egress) == 0 {
		egress = []*networking.IstioEgressListener{{Hosts: []string{"*/*"}}}
	}
	for _, eg := range egress {
		l := egressListener{}
		if p := eg.GetPort(); p != nil && !strings.EqualFold(p.GetProtocol(), "HTTP_PROXY") {
			l.port = p.GetNumber()
		}
		for _, h := range eg.GetHosts() {
			hns, name, ok := strings.Cut(h, "/")
			if !ok {
				continue // rejected by validation; ignored as istiod ignores it
			}
			if hns == "." {
				hns = ns
			}
			l.hosts = append(l.hosts, egressHost{raw: h, ns: hns, name: name})
		}
		s.egress = append(s.egress, l)
	}
	return s
}

// name returns "namespace/name" of the Sidecar, "" when none applies.
func (s *sidecarScope) name() string {
	if s.cfg == nil {
		return ""
	}
	return s.cfg.Key()
}

// matchesNamespace reports whether the host imports from namespace ns.
func (h egressHost) matchesNamespace(ns string) bool {
	return h.ns == "*" || h.ns == ns
}

// matchesHost reports whether the host's dnsName covers hostname, a service
// of namespace ns: "*", "*.suffix", the exact FQDN, or (a meshd extension;
// istiod wants FQDNs) a short name resolved in ns ("reviews",
// "reviews.shop").
func (h egressHost) matchesHost(hostname, ns, domain string) bool {
	return model.HostMatches(h.name, hostname) || resolveHost(h.name, ns, domain) == hostname
}

// importService returns the first egress host that imports svc and the
// ports imported (all when a listener without port imports it). ok is false
// when no egress host imports svc.
func (s *sidecarScope) importService(svc *model.Service, domain string) (host string, ports portFilter, ok bool) {
	return s.imports(func(l egressListener, h egressHost) bool {
		if !h.matchesNamespace(svc.Namespace) || !h.matchesHost(svc.Hostname, svc.Namespace, domain) {
			return false
		}
		_, has := svc.PortByNumber(l.port)
		return l.port == 0 || has
	})
}

// importVirtualService returns the first egress host that imports vs:
// one whose namespace is the VirtualService's and whose dnsName matches
// one of its hosts either way (istiod's backward-compatible Matches: "*.com"
// imports a VirtualService for "a.com" and the other way round), and the
// ports of the listeners importing it.
func (s *sidecarScope) importVirtualService(vs *virtualService, domain string) (host string, ports portFilter, ok bool) {
	ns := vs.cfg.Namespace
	return s.imports(func(_ egressListener, h egressHost) bool {
		return h.matchesNamespace(ns) && h.matchesVirtualService(vs.hosts, ns, domain)
	})
}

// imports returns the first egress host for which match holds and the
// ports of every listener with such a host (all when one has no port).
func (s *sidecarScope) imports(match func(egressListener, egressHost) bool) (host string, ports portFilter, ok bool) {
	for _, l := range s.egress {
		for _, h := range l.hosts {
			if !match(l, h) {
				continue
			}
			if !ok {
				host, ok = h.raw, true
			}
			ports.add(l.port)
			break
		}
	}
	return host, ports, ok
}

func (h egressHost) matchesVirtualService(hosts []string, ns, domain string) bool {
	for _, vh := range hosts {
		if h.matchesHost(vh, ns, domain) || model.HostMatches(vh, h.name) {
			return true
		}
	}
	return false
}

// portFilter is the set of ports a Sidecar imports of a service: all, or
// the listed ones.
type portFilter struct {
	all   bool
	ports []uint32
}

// add adds a port; 0 means every port.
func (p *portFilter) add(port uint32) {
	switch {
	case port == 0:
		p.all = true
	case !p.has(port):
		p.ports = append(p.ports, port)
	}
}

func (p portFilter) has(port uint32) bool {
	for _, q := range p.ports {
		if q == port {
			return true
		}
	}
	return p.all
}

// apply returns svc, or a copy keeping only the imported ports (nil when
// none is left). The copy shares everything else with svc, read-only.
func (p portFilter) apply(svc *model.Service) *model.Service {
	if p.all {
		return svc
	}
	var ports []model.Port
	for _, sp := range svc.Ports {
		if p.has(sp.Port) {
			ports = append(ports, sp)
		}
	}
	if len(ports) == 0 {
		return nil
	}
	if len(ports) == len(svc.Ports) {
		return svc
	}
	c := *svc
	c.Ports = ports
	return &c
}
