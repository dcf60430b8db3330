package model

import (
	"fmt"
	"maps"
	"sort"
	"strings"
)

// index holds the derived, sorted views of a Snapshot.
type index struct {
	services   []*Service
	byHost     map[string][]*Service
	endpoints  map[string][]Endpoint // hostname/namespace → endpoints
	configs    map[Kind][]*Config
	namespaces []*Namespace
	workloads  []*Workload
	// podsByName ("namespace/name") and podsByIP fill endpoint labels.
	podsByName, podsByIP map[string]*Workload
}

func (s *Snapshot) index() *index {
	s.once.Do(func() {
		s.idx = buildIndex(s)
		s.built.Store(true)
	})
	return s.idx
}

// deriveIndex returns next's index from prev's when prev's is built and
// applied changed EndpointSlices, Pods, Secrets and config kinds that make
// no services (VirtualService, DestinationRule, Gateway, Sidecar) only: the
// services whose slices changed, or whose endpoints name a changed pod,
// get their endpoints merged again, the changed kinds' configs are sorted
// again; everything else is shared. nil when next must build its own.
func deriveIndex(prev, next *Snapshot, applied []Change) *index {
	if !prev.built.Load() || len(applied) == 0 {
		return nil
	}
	idx := prev.idx
	keys := map[string]bool{} // "namespace/service" of every slice changed, before and after
	var pods []Change
	configs := map[Kind]bool{}
	for _, c := range applied {
		if c.Kind == KindSecret || c.Kind == KindJWKS {
			continue // not indexed: read by name (Snapshot.Secret, Snapshot.JWKS)
		}
		if c.Err != nil {
			return nil
		}
		switch c.Kind {
		case KindEndpointSlice:
			if old, ok := prev.objects[KindEndpointSlice][c.Namespace+"/"+c.Name]; ok {
				es := old.(*EndpointSet)
				keys[es.Namespace+"/"+es.ServiceName] = true
			}
			if es, ok := c.Object.(*EndpointSet); ok {
				keys[es.Namespace+"/"+es.ServiceName] = true
			}
		case KindPod:
			pods = append(pods, c)
		case KindVirtualService, KindDestinationRule, KindGateway, KindSidecar, KindPeerAuthentication, KindAuthorizationPolicy,
			KindRequestAuthentication:
			configs[c.Kind] = true
		default:
			return nil
		}
	}
	n := *idx
	if len(configs) > 0 {
		n.configs = maps.Clone(idx.configs)
		for k := range configs {
			n.configs[k] = sortedConfigs(next.objects[k])
		}
	}
	if len(pods) > 0 && !n.applyPods(prev, next, pods, keys) {
		return nil
	}
	if len(keys) == 0 {
		return &n
	}
	sets := map[string][]*EndpointSet{}
	for _, o := range next.objects[KindEndpointSlice] {
		es := o.(*EndpointSet)
		if k := es.Namespace + "/" + es.ServiceName; keys[k] {
			sets[k] = append(sets[k], es)
		}
	}
	n.endpoints = make(map[string][]Endpoint, len(idx.endpoints))
	for k, v := range idx.endpoints {
		n.endpoints[k] = v
	}
	for k := range keys {
		o, ok := next.objects[KindService][k]
		if !ok {
			continue // slices of no service are not indexed
		}
		svc := o.(*Service)
		same := 0
		for _, other := range idx.byHost[svc.Hostname] {
			if other.Namespace == svc.Namespace {
				same++
			}
		}
		if same != 1 {
			return nil // a ServiceEntry shares the service's host and namespace: build afresh
		}
		n.endpoints[svc.Hostname+"/"+svc.Namespace] = mergeSlices(sets[k], n.podsByName, n.podsByIP)
	}
	return &n
}

// applyPods updates n's workloads and pod maps for pod changes, and adds
// to keys the services whose EndpointSlices name a changed pod (by name or
// address). False when the index must be built afresh: a ServiceEntry
// selects workloads, or pods share an address.
func (n *index) applyPods(prev, next *Snapshot, pods []Change, keys map[string]bool) bool {
	for _, svc := range n.services {
		if svc.Origin == KindServiceEntry && len(svc.Selector) > 0 {
			return false
		}
	}
	byName, byIP := maps.Clone(n.podsByName), maps.Clone(n.podsByIP)
	names, ips := map[string]bool{}, map[string]bool{}
	for _, c := range pods {
		key := c.Namespace + "/" + c.Name
		names[key] = true
		if o, ok := prev.objects[KindPod][key]; ok {
			w := o.(*Workload)
			delete(byName, key)
			if w.IP != "" {
				if byIP[w.IP] != w {
					return false
				}
				delete(byIP, w.IP)
				ips[w.IP] = true
			}
		}
	}
	for _, c := range pods {
		w, ok := c.Object.(*Workload)
		if !ok {
			continue // deleted
		}
		byName[c.Namespace+"/"+c.Name] = w
		if w.IP != "" {
			if _, taken := byIP[w.IP]; taken {
				return false
			}
			byIP[w.IP] = w
			ips[w.IP] = true
		}
	}
	n.podsByName, n.podsByIP = byName, byIP
	n.workloads = sortedWorkloads(next.objects[KindPod])
	for _, o := range next.objects[KindEndpointSlice] {
		es := o.(*EndpointSet)
		for i := range es.Endpoints {
			if ep := &es.Endpoints[i]; names[es.Namespace+"/"+ep.WorkloadName] || ips[ep.Address] {
				keys[es.Namespace+"/"+es.ServiceName] = true
				break
			}
		}
	}
	return true
}

// sortedWorkloads returns the pods by namespace and name.
func sortedWorkloads(objects map[string]any) []*Workload {
	out := make([]*Workload, 0, len(objects))
	for _, o := range objects {
		out = append(out, o.(*Workload))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Namespace+"/"+a.Name < b.Namespace+"/"+b.Name
	})
	return out
}

func buildIndex(s *Snapshot) *index {
	idx := &index{byHost: map[string][]*Service{}, endpoints: map[string][]Endpoint{}, configs: map[Kind][]*Config{}}
	for _, k := range ConfigKinds {
		idx.configs[k] = sortedConfigs(s.objects[k])
	}
	for _, o := range s.objects[KindNamespace] {
		idx.namespaces = append(idx.namespaces, o.(*Namespace))
	}
	sort.Slice(idx.namespaces, func(i, j int) bool { return idx.namespaces[i].Name < idx.namespaces[j].Name })
	podsByName := map[string]*Workload{}
	podsByIP := map[string]*Workload{}
	idx.podsByName, idx.podsByIP = podsByName, podsByIP
	idx.workloads = sortedWorkloads(s.objects[KindPod])
	for _, w := range idx.workloads {
		podsByName[w.Namespace+"/"+w.Name] = w
		if w.IP != "" {
			podsByIP[w.IP] = w
		}
	}
	// Kubernetes services and their EndpointSlices.
	slicesBySvc := map[string][]*EndpointSet{}
	for _, o := range s.objects[KindEndpointSlice] {
		es := o.(*EndpointSet)
		k := es.Namespace + "/" + es.ServiceName
		slicesBySvc[k] = append(slicesBySvc[k], es)
	}
	for key, o := range s.objects[KindService] {
		svc := o.(*Service)
		idx.add(svc, mergeSlices(slicesBySvc[key], podsByName, podsByIP))
	}
	for _, cfg := range idx.configs[KindServiceEntry] {
		for _, se := range ServicesFromServiceEntry(cfg) {
			eps := se.Endpoints
			if len(se.Service.Selector) > 0 {
				eps = workloadEntryEndpoints(se.Service, idx.workloads)
			}
			idx.add(se.Service, eps)
		}
	}
	sort.Slice(idx.services, func(i, j int) bool {
		a, b := idx.services[i], idx.services[j]
		if a.Hostname != b.Hostname {
			return a.Hostname < b.Hostname
		}
		return a.Namespace < b.Namespace
	})
	for _, list := range idx.byHost {
		sort.SliceStable(list, func(i, j int) bool { return olderService(list[i], list[j]) })
	}
	return idx
}

func (idx *index) add(svc *Service, eps []Endpoint) {
	idx.services = append(idx.services, svc)
	idx.byHost[svc.Hostname] = append(idx.byHost[svc.Hostname], svc)
	idx.endpoints[svc.Hostname+"/"+svc.Namespace] = eps
}

func olderService(a, b *Service) bool {
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.Namespace < b.Namespace
}

// mergeSlices joins a service's EndpointSlices, fills labels from workloads and
// sorts by address. An endpoint (address and ports) present in several slices
// is kept once; the same address with other ports is another endpoint.
func mergeSlices(sets []*EndpointSet, byName, byIP map[string]*Workload) []Endpoint {
	sort.Slice(sets, func(i, j int) bool { return sets[i].Name < sets[j].Name })
	seen := map[string]bool{}
	var out []Endpoint
	for _, es := range sets {
		for _, ep := range es.Endpoints {
			key := endpointKey(&ep)
			if seen[key] {
				continue
			}
			seen[key] = true
			w := byName[es.Namespace+"/"+ep.WorkloadName]
			if w == nil {
				w = byIP[ep.Address]
			}
			if w != nil {
				if len(ep.Labels) == 0 {
					ep.Labels = w.Labels
				}
				if ep.ServiceAccount == "" {
					ep.ServiceAccount = w.ServiceAccount
				}
				if ep.Locality == "" {
					ep.Locality = w.Locality
				}
			}
			out = append(out, ep)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// endpointKey identifies an endpoint by address and port map.
func endpointKey(ep *Endpoint) string {
	names := make([]string, 0, len(ep.Ports))
	for n := range ep.Ports {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString(ep.Address)
	for _, n := range names {
		fmt.Fprintf(&b, "|%s=%d", n, ep.Ports[n])
	}
	return b.String()
}

func sortedConfigs(m map[string]any) []*Config {
	out := make([]*Config, 0, len(m))
	for _, o := range m {
		out = append(out, o.(*Config))
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.Before(b.CreatedAt)
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return out
}

// HostMatches reports whether host matches pattern, where pattern may be a
// wildcard like "*.example.com" or "*".
func HostMatches(pattern, host string) bool {
	if pattern == "*" || pattern == host {
		return true
	}
	if strings.HasPrefix(pattern, "*") {
		return strings.HasSuffix(host, pattern[1:])
	}
	return false
}
