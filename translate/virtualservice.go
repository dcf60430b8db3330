package translate

import (
	"fmt"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// virtualService is a VirtualService accepted for the mesh, with its hosts
// resolved to FQDNs and its delegates merged into spec (a copy when merged).
type virtualService struct {
	cfg   *model.Config
	spec  *networking.VirtualService
	hosts []string
	// export is the effective exportTo (MeshConfig default applied).
	export exportSet
	// bySource is set when an HTTP match depends on the client's labels
	// or namespace (share.go).
	bySource bool
}

// boundToMesh reports whether a VirtualService applies to sidecars: no
// gateways listed, or "mesh" among them. One bound only to named gateways
// is for those gateways alone.
func boundToMesh(gateways []string) bool {
	return len(gateways) == 0 || slices.Contains(gateways, meshGateway)
}

// indexVirtualServices accepts mesh VirtualServices, oldest first, as
// istiod: delegates (no hosts) are checked on their own and merged into
// the roots that name them; a VirtualService that fails its checks or names
// a missing destination is rejected and reported alone; a younger one
// claiming an already claimed host loses that host and is reported (routes
// of several VirtualServices are not merged).
func (x *Index) indexVirtualServices() {
	configs := x.snap.Configs(model.KindVirtualService)
	cat := vsCatalog{all: map[string]*model.Config{}, bad: map[string]bool{}}
	for _, cfg := range configs {
		cat.all[cfg.Key()] = cfg
		spec := cfg.Spec.(*networking.VirtualService)
		if len(spec.GetHosts()) > 0 {
			continue
		}
		if field, err := x.checkVirtualService(cfg, spec, true); err != nil {
			cat.bad[cfg.Key()] = true
			x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field, "%v; the delegate VirtualService is not applied", err)
		}
	}
	mesh := map[string]*virtualService{}
	for _, cfg := range configs {
		spec := cfg.Spec.(*networking.VirtualService)
		if len(spec.GetHosts()) == 0 || !boundToMesh(spec.GetGateways()) {
			continue
		}
		if field, err := x.checkVirtualService(cfg, spec, false); err != nil {
			x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field, "%v; the VirtualService is not applied", err)
			continue
		}
		merged := x.mergeDelegates(cfg, spec, cat)
		vs := &virtualService{cfg: cfg, spec: merged, bySource: bySource(merged)}
		x.claimHosts(vs)
		if hasNamedGateway(spec.GetGateways()) {
			mesh[cfg.Key()] = vs
		}
	}
	x.indexGatewayVirtualServices(configs, cat, mesh)
}

// checkVirtualService runs the spec checks and the destination checks.
func (x *Index) checkVirtualService(cfg *model.Config, spec *networking.VirtualService, delegate bool) (string, error) {
	if field, err := checkVirtualService(spec, delegate); err != nil {
		return field, err
	}
	return x.checkDestinations(cfg, spec)
}

// claimHosts records vs as a candidate VirtualService of each of its hosts.
// Several VirtualServices may claim a host: each scope uses the first one it
// sees (see builder.virtualServiceFor). A younger one visible in a namespace
// where an older one is visible too is reported; when it is shadowed
// everywhere it is visible, its claim is dropped.
func (x *Index) claimHosts(vs *virtualService) {
	cfg := vs.cfg
	vs.export = resolveExportTo(x.vsExportTo(vs.spec.GetExportTo()), cfg.Namespace)
	x.vsAll = append(x.vsAll, vs)
	wildcard := false
	for i, h := range vs.spec.GetHosts() {
		host := resolveHost(h, cfg.Namespace, x.domain)
		vs.hosts = append(vs.hosts, host)
		field := fmt.Sprintf("spec.hosts[%d]", i)
		if strings.Contains(host, "*") {
			wildcard = true
			continue
		}
		if x.reportHostConflict(vs, host, field) {
			continue
		}
		if _, ok := x.byHost[host]; !ok {
			x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field,
				"host %q matches no service in the registry; nothing routes it", host)
		}
		x.vs[host] = append(x.vs[host], vs)
	}
	if wildcard {
		x.vsWildcard = append(x.vsWildcard, vs)
	}
}

// reportHostConflict reports vs when an older claimant of host is visible
// in some namespace vs is visible in, and tells whether vs is shadowed
// wherever it is visible (its claim is then useless).
func (x *Index) reportHostConflict(vs *virtualService, host, field string) bool {
	cfg := vs.cfg
	for _, prev := range x.vs[host] {
		if !prev.export.overlaps(vs.export) {
			continue
		}
		if shadows(prev, vs) {
			x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field,
				"host %q is already routed by VirtualService %s (older); routes are not merged, this host is ignored here",
				host, prev.cfg.Key())
			return true
		}
		x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field,
			"host %q is also routed by VirtualService %s (older); routes are not merged: in a namespace that sees both, "+
				"its own non-public VirtualService wins, else the older one", host, prev.cfg.Key())
		return false
	}
	return false
}

// shadows reports whether older wins over younger in every namespace
// younger is visible in (see vsRank).
func shadows(older, younger *virtualService) bool {
	if younger.export.all {
		return older.export.all && vsRank(older, younger.cfg.Namespace) <= vsRank(younger, younger.cfg.Namespace)
	}
	for _, ns := range younger.export.ns {
		if !older.export.has(ns) || vsRank(older, ns) > vsRank(younger, ns) {
			return false
		}
	}
	return true
}

// vsRank orders the VirtualServices a namespace sees for one host, as
// istiod's VirtualServicesForGateway lists them: the namespace's own
// non-public ones (0), then those exported to it by name (1), then public
// ones (2); the oldest first within a rank.
func vsRank(vs *virtualService, ns string) int {
	switch {
	case vs.export.all:
		return 2
	case vs.cfg.Namespace == ns:
		return 0
	}
	return 1
}

// virtualServiceCandidates returns the VirtualServices that may route host,
// oldest first: exact claims, then wildcard ones.
func (x *Index) virtualServiceCandidates(host string) []*virtualService {
	out := slices.Clone(x.vs[host])
	for _, vs := range x.vsWildcard {
		for _, h := range vs.hosts {
			if model.HostMatches(h, host) {
				out = append(out, vs)
				break
			}
		}
	}
	return out
}

// checkDestinations verifies that every destination (HTTP routes and
// mirrors, TCP and TLS routes) names a known service, port and subset, so no
// route or listener can reference a missing cluster.
func (x *Index) checkDestinations(cfg *model.Config, spec *networking.VirtualService) (string, error) {
	type dest struct {
		field string
		d     *networking.Destination
	}
	var all []dest
	for i, hr := range spec.GetHttp() {
		for j, rd := range hr.GetRoute() {
			all = append(all, dest{fmt.Sprintf("spec.http[%d].route[%d].destination", i, j), rd.GetDestination()})
		}
		if m := hr.GetMirror(); m != nil {
			all = append(all, dest{fmt.Sprintf("spec.http[%d].mirror", i), m})
		}
		for j, m := range hr.GetMirrors() {
			all = append(all, dest{fmt.Sprintf("spec.http[%d].mirrors[%d].destination", i, j), m.GetDestination()})
		}
	}
	for i, r := range spec.GetTcp() {
		for j, rd := range r.GetRoute() {
			all = append(all, dest{fmt.Sprintf("spec.tcp[%d].route[%d].destination", i, j), rd.GetDestination()})
		}
	}
	for i, r := range spec.GetTls() {
		for j, rd := range r.GetRoute() {
			all = append(all, dest{fmt.Sprintf("spec.tls[%d].route[%d].destination", i, j), rd.GetDestination()})
		}
	}
	for _, d := range all {
		if d.d == nil {
			return d.field, fmt.Errorf("destination is required")
		}
		if f, err := x.checkDestination(cfg, spec, d.d); err != nil {
			return d.field + f, err
		}
	}
	return "", nil
}

func (x *Index) checkDestination(cfg *model.Config, spec *networking.VirtualService, d *networking.Destination) (string, error) {
	host := resolveHost(d.GetHost(), cfg.Namespace, x.domain)
	svc, ok := x.byHost[host]
	if !ok {
		return ".host", fmt.Errorf("destination host %q is not in the service registry", host)
	}
	if n := d.GetPort().GetNumber(); n != 0 {
		if _, ok := svc.PortByNumber(n); !ok {
			return ".port.number", fmt.Errorf("service %q has no port %d", host, n)
		}
	} else if len(svc.Ports) > 1 {
		if err := x.checkImplicitPort(cfg, spec, svc); err != nil {
			return ".port", err
		}
	}
	if d.GetSubset() != "" {
		if _, ok := x.subset(host, d.GetSubset()); !ok {
			return ".subset", fmt.Errorf("subset %q of host %q is not defined by any DestinationRule", d.GetSubset(), host)
		}
	}
	return "", nil
}

// checkImplicitPort: a destination without a port on a multi-port service
// takes the listener's port, so that service must have every port the
// VirtualService's own hosts are served on.
func (x *Index) checkImplicitPort(cfg *model.Config, spec *networking.VirtualService, dest *model.Service) error {
	for _, h := range spec.GetHosts() {
		src, ok := x.byHost[resolveHost(h, cfg.Namespace, x.domain)]
		if !ok {
			continue
		}
		for _, p := range src.Ports {
			if _, ok := dest.PortByNumber(p.Port); !ok && p.Protocol.IsHTTP() {
				return fmt.Errorf("service %q has several ports and none is %d (the port of %q): set destination.port",
					dest.Hostname, p.Port, src.Hostname)
			}
		}
	}
	return nil
}

// destinationCluster returns the cluster a destination sends to when reached
// through listener port listenerPort.
func (x *Index) destinationCluster(ns string, d *networking.Destination, listenerPort uint32) string {
	host := resolveHost(d.GetHost(), ns, x.domain)
	port := d.GetPort().GetNumber()
	if port == 0 {
		port = listenerPort
		if svc, ok := x.byHost[host]; ok && len(svc.Ports) == 1 {
			port = svc.Ports[0].Port
		}
	}
	return ClusterName(port, d.GetSubset(), host)
}
