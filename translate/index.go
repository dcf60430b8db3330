package translate

import (
	"fmt"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// Options are mesh-wide translation settings.
type Options struct {
	// Domain is the cluster DNS domain, default "cluster.local".
	Domain string
}

// Index is the mesh-wide, scope-independent part of translation, built once
// per Snapshot and shared by every scope's Build. It is immutable after
// NewIndex returns.
type Index struct {
	snap   *model.Snapshot
	domain string

	// services holds one service per hostname (the oldest), sorted by hostname.
	services []*model.Service
	byHost   map[string]*model.Service
	// vs maps an exact FQDN to the VirtualService bound to the mesh for it.
	vs map[string]*virtualService
	// vsWildcard holds mesh VirtualServices with wildcard hosts, oldest first.
	vsWildcard []*virtualService
	// subsets maps a hostname to the DestinationRule subsets defined for it.
	subsets map[string][]*networking.Subset
	// clas holds every ClusterLoadAssignment of the mesh by cluster name.
	clas   map[string]*endpoint.ClusterLoadAssignment
	errors []model.ObjectError
}

// NewIndex validates the Snapshot's config against its registry and prepares
// everything that does not depend on the proxy scope.
func NewIndex(snap *model.Snapshot, opts Options) *Index {
	if opts.Domain == "" {
		opts.Domain = "cluster.local"
	}
	x := &Index{
		snap: snap, domain: opts.Domain, byHost: map[string]*model.Service{},
		vs: map[string]*virtualService{}, subsets: map[string][]*networking.Subset{},
		clas: map[string]*endpoint.ClusterLoadAssignment{},
	}
	x.indexServices()
	x.indexDestinationRules()
	x.indexVirtualServices()
	x.buildEndpoints()
	return x
}

// Snapshot returns the Snapshot the Index was built from.
func (x *Index) Snapshot() *model.Snapshot { return x.snap }

// Errors returns the config problems found while indexing (rejected or
// conflicting objects), in a stable order.
func (x *Index) Errors() []model.ObjectError { return x.errors }

// ClusterLoadAssignment returns the mesh-wide endpoints of an EDS cluster.
func (x *Index) ClusterLoadAssignment(cluster string) (*endpoint.ClusterLoadAssignment, bool) {
	c, ok := x.clas[cluster]
	return c, ok
}

// Service returns the service serving a hostname.
func (x *Index) Service(host string) (*model.Service, bool) {
	s, ok := x.byHost[host]
	return s, ok
}

func (x *Index) report(cfgKind model.Kind, ns, name, source, field, format string, args ...any) {
	x.errors = append(x.errors, model.ObjectError{
		Kind: cfgKind, Namespace: ns, Name: name, Source: source, Field: field,
		Message: fmt.Sprintf(format, args...),
	})
}

// indexServices keeps the oldest service per hostname and reports the others.
func (x *Index) indexServices() {
	for _, svc := range x.snap.Services() {
		owner := x.snap.ServicesByHost(svc.Hostname)[0]
		if owner != svc {
			x.report(svc.Origin, svc.Namespace, svc.Name, "", "spec.hosts",
				"host %q is already defined by %s %s/%s (older); this definition is ignored",
				svc.Hostname, owner.Origin, owner.Namespace, owner.Name)
			continue
		}
		x.services = append(x.services, svc)
		x.byHost[svc.Hostname] = svc
	}
}

// indexDestinationRules records subsets per host; the oldest rule for a host wins.
func (x *Index) indexDestinationRules() {
	owner := map[string]*model.Config{}
	for _, cfg := range x.snap.Configs(model.KindDestinationRule) {
		dr := cfg.Spec.(*networking.DestinationRule)
		host := resolveHost(dr.GetHost(), cfg.Namespace, x.domain)
		if prev, ok := owner[host]; ok {
			x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, "spec.host",
				"host %q already has DestinationRule %s (older); this one is ignored", host, prev.Key())
			continue
		}
		if _, ok := x.byHost[host]; !ok {
			x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, "spec.host",
				"host %q matches no service in the registry", host)
		}
		owner[host] = cfg
		x.subsets[host] = dr.GetSubsets()
	}
}

func (x *Index) subset(host, name string) (*networking.Subset, bool) {
	for _, s := range x.subsets[host] {
		if s.GetName() == name {
			return s, true
		}
	}
	return nil, false
}
