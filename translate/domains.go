package translate

import (
	"fmt"

	"github.com/meshd/meshd/internal/model"
)

// domainTable holds, for one Index, the domains of every HTTP port of
// every service (for scopes of the service's namespace and for others),
// and the domains more than one service claims: only those can repeat in
// a route configuration, so only those are tracked while one is built
// (every view would otherwise insert every domain of the mesh in a map).
type domainTable struct {
	lists     map[domainsKey][]string
	contested map[string]bool
}

// domainsKey names the domains of a service and port, for scopes of its
// own namespace or of another (serviceDomains).
type domainsKey struct {
	svc  *model.Service
	port uint32
	own  bool
}

// domainTable returns the Index's table, building it on first use. It
// depends on the services alone: ReleaseMemos keeps it (a few entries per
// service), and the next Index with the very same services takes it over.
func (x *Index) domainTable() *domainTable {
	if t := x.domains.Load(); t != nil {
		return t
	}
	t := &domainTable{lists: map[domainsKey][]string{}, contested: map[string]bool{}}
	owner := map[string]*model.Service{}
	for _, svc := range x.services {
		for _, p := range svc.Ports {
			if !p.Protocol.IsHTTP() {
				continue
			}
			own := serviceDomains(svc, svc.Namespace, p.Port)
			t.lists[domainsKey{svc: svc, port: p.Port, own: true}] = own
			t.lists[domainsKey{svc: svc, port: p.Port}] = serviceDomains(svc, "", p.Port)
			for _, d := range own { // a superset of the other namespaces' domains
				if o, ok := owner[d]; ok && o != svc {
					t.contested[d] = true
				}
				owner[d] = svc
			}
		}
	}
	x.domains.CompareAndSwap(nil, t)
	return x.domains.Load()
}

// serviceDomains lists the domains of svc on port for scopes of
// namespace ns: its host names (hostNames) and IPv4 VIPs, each alone and
// with the port, without repeats.
func serviceDomains(svc *model.Service, ns string, port uint32) []string {
	var out []string
	seen := map[string]bool{}
	add := func(d string) {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	for _, name := range hostNames(svc, ns) {
		add(name)
		add(fmt.Sprintf("%s:%d", name, port))
	}
	for _, vip := range svc.VIPs {
		if isIPv4(vip) {
			add(vip)
			add(fmt.Sprintf("%s:%d", vip, port))
		}
	}
	return out
}
