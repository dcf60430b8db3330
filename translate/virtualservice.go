package translate

import (
	"fmt"
	"strings"

	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// virtualService is a VirtualService accepted for the mesh, with its hosts
// resolved to FQDNs.
type virtualService struct {
	cfg   *model.Config
	spec  *networking.VirtualService
	hosts []string
}

// boundToMesh reports whether a VirtualService applies to sidecars: no
// gateways listed, or "mesh" among them.
func boundToMesh(gateways []string) bool {
	if len(gateways) == 0 {
		return true
	}
	for _, g := range gateways {
		if g == "mesh" {
			return true
		}
	}
	return false
}

// indexVirtualServices accepts mesh VirtualServices whose every destination
// exists, oldest first; a younger one claiming an already claimed host loses
// that host and is reported, as istiod does (routes are not merged).
func (x *Index) indexVirtualServices() {
	for _, cfg := range x.snap.Configs(model.KindVirtualService) {
		spec := cfg.Spec.(*networking.VirtualService)
		if !boundToMesh(spec.GetGateways()) {
			continue
		}
		if field, err := x.checkDestinations(cfg, spec); err != nil {
			x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field,
				"%v; the VirtualService is not applied", err)
			continue
		}
		vs := &virtualService{cfg: cfg, spec: spec}
		wildcard := false
		for i, h := range spec.GetHosts() {
			host := resolveHost(h, cfg.Namespace, x.domain)
			vs.hosts = append(vs.hosts, host)
			field := fmt.Sprintf("spec.hosts[%d]", i)
			if strings.Contains(host, "*") {
				wildcard = true
				continue
			}
			if prev, ok := x.vs[host]; ok {
				x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field,
					"host %q is already routed by VirtualService %s (older); routes are not merged, this host is ignored here",
					host, prev.cfg.Key())
				continue
			}
			if _, ok := x.byHost[host]; !ok {
				x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field,
					"host %q matches no service in the registry; nothing routes it", host)
			}
			x.vs[host] = vs
		}
		if wildcard {
			x.vsWildcard = append(x.vsWildcard, vs)
		}
	}
}

// virtualServiceFor returns the VirtualService routing host: an exact match,
// else the oldest wildcard match.
func (x *Index) virtualServiceFor(host string) *virtualService {
	if vs, ok := x.vs[host]; ok {
		return vs
	}
	for _, vs := range x.vsWildcard {
		for _, h := range vs.hosts {
			if model.HostMatches(h, host) {
				return vs
			}
		}
	}
	return nil
}

// checkDestinations verifies that every HTTP destination names a known
// service, port and subset, so no route can reference a missing cluster.
func (x *Index) checkDestinations(cfg *model.Config, spec *networking.VirtualService) (string, error) {
	for i, hr := range spec.GetHttp() {
		for j, rd := range hr.GetRoute() {
			field := fmt.Sprintf("spec.http[%d].route[%d].destination", i, j)
			if f, err := x.checkDestination(cfg, spec, rd.GetDestination()); err != nil {
				return field + f, err
			}
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
