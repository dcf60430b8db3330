package translate

import (
	"fmt"
	"maps"
	"slices"
	"sort"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// Dependency-tracked rebuilds, istiod's ConfigsUpdated and
// SidecarScope.DependsOnConfig done on meshd's immutable Indexes: Changes
// compares the Index a push builds with the previous one, once per push,
// and summarises what changed as the hosts and namespaces it touches;
// Dependencies.Affects then tells, per scope, whether the scope can see
// any of it. A scope it cannot see would be translated into the very same
// config, so the server keeps its snapshot (no rebuild, no push).
//
// The summary is conservative: whatever it cannot place is said to affect
// every scope (or every router). Per kind:
//   - VirtualService (old and new versions, and the roots of a changed
//     delegate): every mesh VirtualService of either Index sharing a host
//     with them (host claims and conflicts are mesh-wide) is "related"; a
//     sidecar scope is affected iff it sees a related one (exportTo, and
//     the egress hosts of its Sidecar). One bound to named gateways, or a
//     delegate, affects every router.
//   - DestinationRule: its hosts (old and new); a sidecar scope is affected
//     iff it refers to a service of such a host (sees it, or sees a
//     VirtualService routing to it) and, when the subsets did not change,
//     the rule can apply to it (its namespace is the scope's, the
//     service's or the root namespace). Every router is affected.
//   - ServiceEntry: its hosts (old and new), as a DestinationRule's without
//     the namespace rule; one with a workloadSelector (inbound config), or
//     one that changes which domains are contested, affects every scope.
//   - Sidecar: the scopes of its namespace; in the root namespace, every
//     scope. Routers ignore Sidecars.
//   - Everything else (Service, Namespace, Gateway, MeshConfig, Secret,
//     security policy, JWKS, a kind not known here, other Options): every
//     scope. EndpointSlices and Pods are left to the caller (they are the
//     endpoint fast path's, EndpointShape).
//
// Changes diffs the Snapshots' objects, not the events that led from one to
// the other, so merged or dropped events cannot make it miss one.

// Dependencies is what changed between two Indexes, summarised for
// Affects. It is immutable once Changes returns and safe for concurrent use.
type Dependencies struct {
	prev, x *Index
	// all, when set, is why every scope is affected; routers why every
	// router is.
	all, routers string
	// sidecarNS maps a namespace whose scopes are all affected (a Sidecar
	// changed there) to why.
	sidecarNS map[string]string
	vs        []vsDep
	hosts     []hostDep
	// changed names the changed objects, "Kind namespace/name", sorted.
	changed []string
	// dests maps, per Index (0 prev, 1 x), a destination host to the mesh
	// VirtualServices routing to it.
	dests [2]map[string][]*virtualService
}

// vsDep is a changed VirtualService: the mesh VirtualServices of each
// Index (0 prev, 1 x) whose visibility decides who is affected.
type vsDep struct {
	reason  string
	related [2][]*virtualService
}

// hostDep is a changed DestinationRule or ServiceEntry: the services of
// each Index its hosts name, and, for a rule whose subsets did not change,
// its namespace (the rule applies only there, in its service's namespace
// or from the root namespace); "" when any scope referring to the services
// may be affected.
type hostDep struct {
	reason string
	svcs   [2][]*model.Service
	ruleNS string
}

// dependencyKinds are the kinds Changes places precisely.
var dependencyKinds = []model.Kind{model.KindVirtualService, model.KindDestinationRule, model.KindServiceEntry, model.KindSidecar}

// endpointKinds are left to the endpoint fast path.
var endpointKinds = []model.Kind{model.KindEndpointSlice, model.KindPod}

// otherKinds are the kinds that affect every scope, named in reasons.
var otherKinds = []model.Kind{model.KindNamespace, model.KindService, model.KindGateway, model.KindPeerAuthentication,
	model.KindAuthorizationPolicy, model.KindRequestAuthentication, model.KindJWKS, model.KindMeshConfig, model.KindSecret}

// Changes summarises what changed from prev to x (see Dependencies).
// prev nil (the first push) affects every scope.
func Changes(prev, x *Index) *Dependencies {
	d := &Dependencies{prev: prev, x: x, sidecarNS: map[string]string{}}
	switch {
	case prev == nil:
		d.all = "first push"
		return d
	case prev.domain != x.domain || prev.filterGatewayClusters != x.filterGatewayClusters ||
		prev.scopeGatewayToNamespace != x.scopeGatewayToNamespace:
		d.all = "translation options changed"
		return d
	}
	known := append(append(slices.Clone(dependencyKinds), endpointKinds...), otherKinds...)
	if !prev.snap.SameObjects(x.snap, known...) {
		d.all = "a kind of object changed that is not tracked"
	}
	for _, k := range otherKinds {
		if !sameKind(prev.snap, x.snap, k, known) {
			d.changed = append(d.changed, string(k))
			if d.all == "" {
				d.all = string(k) + " changed"
			}
		}
	}
	for _, k := range dependencyKinds {
		if sameKind(prev.snap, x.snap, k, known) {
			continue
		}
		keys, olds, curs := diffConfigs(prev.snap, x.snap, k)
		for _, key := range keys {
			old, cur := olds[key], curs[key]
			reason := string(k) + " " + key
			d.changed = append(d.changed, reason)
			if d.all != "" {
				continue
			}
			switch k {
			case model.KindVirtualService:
				d.addVirtualService(key, reason, old, cur)
			case model.KindDestinationRule:
				d.addDestinationRule(reason, old, cur)
			case model.KindServiceEntry:
				d.addServiceEntry(reason, old, cur)
			case model.KindSidecar:
				d.addSidecar(reason, old, cur)
			}
		}
	}
	sort.Strings(d.changed)
	if d.all == "" && len(d.hosts) > 0 && !maps.Equal(prev.domainTable().contested, x.domainTable().contested) {
		d.all = "contested virtual host domains changed"
	}
	if d.all == "" {
		for i, idx := range []*Index{prev, x} {
			d.dests[i] = destinationIndex(idx)
		}
	}
	return d
}

// Changed names the objects that changed ("Kind namespace/name", or a
// kind alone when every scope is affected by it), sorted.
func (d *Dependencies) Changed() []string { return d.changed }

// All returns why every scope is affected, "" when not every one is.
func (d *Dependencies) All() string { return d.all }

// Affects reports whether scope's config can differ between the two
// Indexes, and why (the first change found that it sees).
func (d *Dependencies) Affects(scope model.Scope) (bool, string) {
	if d.all != "" {
		return true, d.all
	}
	if scope.Type == model.Router {
		return d.routers != "", d.routers
	}
	if r, ok := d.sidecarNS[scope.Namespace]; ok {
		return true, r
	}
	if len(d.vs) == 0 && len(d.hosts) == 0 {
		return false, ""
	}
	// The Sidecar of the scope's namespace and the root namespace's are
	// the same in both Indexes (else sidecarNS or all said so).
	sc := d.x.sidecarFor(scope)
	idxs := [2]*Index{d.prev, d.x}
	for _, v := range d.vs {
		for i, idx := range idxs {
			for _, vs := range v.related[i] {
				if idx.vsSeen(&sc, scope.Namespace, vs) {
					return true, v.reason
				}
			}
		}
	}
	for _, h := range d.hosts {
		for i, idx := range idxs {
			for _, svc := range h.svcs[i] {
				if h.ruleNS != "" && h.ruleNS != scope.Namespace && h.ruleNS != svc.Namespace && h.ruleNS != idx.rootNamespace {
					continue
				}
				if d.refers(i, &sc, scope.Namespace, svc) {
					return true, h.reason
				}
			}
		}
	}
	return false, ""
}

// refers reports whether a scope of namespace ns with Sidecar sc has config
// for svc in Index i: it sees svc, or a VirtualService it sees routes to it.
func (d *Dependencies) refers(i int, sc *sidecarScope, ns string, svc *model.Service) bool {
	idx := [2]*Index{d.prev, d.x}[i]
	if idx.serviceExported(svc, ns) {
		if sc.egress == nil {
			return true
		}
		if _, _, ok := sc.importService(svc, idx.domain); ok {
			return true
		}
	}
	for _, vs := range d.dests[i][svc.Hostname] {
		if idx.vsSeen(sc, ns, vs) {
			return true
		}
	}
	return false
}

// vsSeen reports whether a scope of namespace ns with Sidecar sc sees a
// mesh VirtualService (builder.vsVisible).
func (x *Index) vsSeen(sc *sidecarScope, ns string, vs *virtualService) bool {
	if !x.vsExported(vs, ns) {
		return false
	}
	if sc.egress == nil {
		return true
	}
	_, _, ok := sc.importVirtualService(vs, x.domain)
	return ok
}

// addVirtualService records a changed VirtualService (key; old and cur
// its versions, nil when absent).
func (d *Dependencies) addVirtualService(key, reason string, old, cur *model.Config) {
	var hosts []string
	keys := map[string]bool{key: true}
	for i, cfg := range []*model.Config{old, cur} {
		if cfg == nil {
			continue
		}
		spec := cfg.Spec.(*networking.VirtualService)
		if len(spec.GetHosts()) == 0 || hasNamedGateway(spec.GetGateways()) || !boundToMesh(spec.GetGateways()) {
			d.routers = reason // a delegate, or bound to gateways
		}
		for _, h := range spec.GetHosts() {
			hosts = append(hosts, h, resolveHost(h, cfg.Namespace, d.x.domain))
		}
		if len(spec.GetHosts()) == 0 {
			// A delegate: its roots' hosts are what it changes.
			for _, vs := range [2]*Index{d.prev, d.x}[i].vsAll {
				if delegatesTo(vs.cfg, key) {
					keys[vs.cfg.Key()] = true
					hosts = append(hosts, vs.hosts...)
				}
			}
		}
	}
	dep := vsDep{reason: reason}
	for i, idx := range [2]*Index{d.prev, d.x} {
		for _, vs := range idx.vsAll {
			if keys[vs.cfg.Key()] || sharesHost(vs.hosts, hosts) {
				dep.related[i] = append(dep.related[i], vs)
			}
		}
	}
	d.vs = append(d.vs, dep)
}

// delegatesTo reports whether a root VirtualService names the delegate key.
func delegatesTo(cfg *model.Config, key string) bool {
	for _, hr := range cfg.Spec.(*networking.VirtualService).GetHttp() {
		if dl := hr.GetDelegate(); dl != nil {
			ns := dl.GetNamespace()
			if ns == "" {
				ns = cfg.Namespace
			}
			if ns+"/"+dl.GetName() == key {
				return true
			}
		}
	}
	return false
}

// sharesHost reports whether a host of a matches one of b, either way.
func sharesHost(a, b []string) bool {
	for _, h := range a {
		for _, o := range b {
			if model.HostMatches(h, o) || model.HostMatches(o, h) {
				return true
			}
		}
	}
	return false
}

// addDestinationRule records a changed DestinationRule.
func (d *Dependencies) addDestinationRule(reason string, old, cur *model.Config) {
	d.routers = reason
	var hosts []string
	var subsets [2][]*networking.Subset
	ns := ""
	for i, cfg := range []*model.Config{old, cur} {
		if cfg == nil {
			continue
		}
		spec := cfg.Spec.(*networking.DestinationRule)
		hosts = append(hosts, spec.GetHost(), resolveHost(spec.GetHost(), cfg.Namespace, d.x.domain))
		subsets[i], ns = spec.GetSubsets(), cfg.Namespace
	}
	dep := hostDep{reason: reason, svcs: d.servicesOf(hosts)}
	// Subsets are mesh-wide: they decide whether a VirtualService routing to
	// one is accepted, and the EDS names of subset clusters.
	if slices.EqualFunc(subsets[0], subsets[1], func(a, b *networking.Subset) bool { return proto.Equal(a, b) }) {
		dep.ruleNS = ns
	}
	d.hosts = append(d.hosts, dep)
}

// addServiceEntry records a changed ServiceEntry.
func (d *Dependencies) addServiceEntry(reason string, old, cur *model.Config) {
	d.routers = reason
	var hosts []string
	for _, cfg := range []*model.Config{old, cur} {
		if cfg == nil {
			continue
		}
		spec := cfg.Spec.(*networking.ServiceEntry)
		if spec.GetWorkloadSelector() != nil {
			d.all = reason + " (workloadSelector: inbound config)"
			return
		}
		// The registry names a ServiceEntry's services by its hosts as
		// written; the resolved form is kept too (over-approximating).
		for _, h := range spec.GetHosts() {
			hosts = append(hosts, h, resolveHost(h, cfg.Namespace, d.x.domain))
		}
	}
	d.hosts = append(d.hosts, hostDep{reason: reason, svcs: d.servicesOf(hosts)})
}

// addSidecar records a changed Sidecar.
func (d *Dependencies) addSidecar(reason string, old, cur *model.Config) {
	for _, cfg := range []*model.Config{old, cur} {
		if cfg == nil {
			continue
		}
		if cfg.Namespace == d.prev.rootNamespace || cfg.Namespace == d.x.rootNamespace {
			d.all = reason + " (root namespace)"
			return
		}
		d.sidecarNS[cfg.Namespace] = reason
	}
}

// servicesOf returns, per Index, the services whose host name matches one
// of hosts (either way: hosts and services may be wildcards).
func (d *Dependencies) servicesOf(hosts []string) [2][]*model.Service {
	var out [2][]*model.Service
	for i, idx := range [2]*Index{d.prev, d.x} {
		for _, svc := range idx.services {
			if sharesHost([]string{svc.Hostname}, hosts) {
				out[i] = append(out[i], svc)
			}
		}
	}
	return out
}

// destinationIndex maps each destination host of x's mesh VirtualServices
// to those routing to it.
func destinationIndex(x *Index) map[string][]*virtualService {
	out := map[string][]*virtualService{}
	for _, vs := range x.vsAll {
		for _, h := range vsDestinationHosts(vs.spec, vs.cfg.Namespace, x.domain) {
			if l := out[h]; len(l) == 0 || l[len(l)-1] != vs {
				out[h] = append(l, vs)
			}
		}
	}
	return out
}

// sameKind reports whether two Snapshots hold the very same objects of
// kind k (known lists every kind the caller considers; one not in it that
// differs makes every kind differ, and the caller affects every scope).
func sameKind(a, b *model.Snapshot, k model.Kind, known []model.Kind) bool {
	except := make([]model.Kind, 0, len(known))
	for _, o := range known {
		if o != k {
			except = append(except, o)
		}
	}
	return a.SameObjects(b, except...)
}

// diffConfigs returns the keys ("namespace/name") of the configs of kind k
// that differ between a and b (added, removed or replaced), sorted, and
// both sides' configs by key.
func diffConfigs(a, b *model.Snapshot, k model.Kind) (keys []string, old, cur map[string]*model.Config) {
	old, cur = map[string]*model.Config{}, map[string]*model.Config{}
	for _, c := range a.Configs(k) {
		old[c.Key()] = c
	}
	for _, c := range b.Configs(k) {
		cur[c.Key()] = c
		if o, ok := old[c.Key()]; !ok || !sameContent(o, c) {
			keys = append(keys, c.Key())
		}
	}
	for key := range old {
		if _, ok := cur[key]; !ok {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	return keys, old, cur
}

// sameContent reports whether two versions of a config translate alike:
// the same object, or one written again with equal content (a re-applied
// manifest, an informer's resync). Source only names the object in errors.
func sameContent(a, b *model.Config) bool {
	return a == b || (proto.Equal(a.Spec, b.Spec) && maps.Equal(a.Labels, b.Labels) &&
		maps.Equal(a.Annotations, b.Annotations) && a.CreatedAt.Equal(b.CreatedAt))
}

// String describes the summary, for logs.
func (d *Dependencies) String() string {
	if d.all != "" {
		return "all: " + d.all
	}
	return fmt.Sprintf("changed %v", d.changed)
}
