package translate

import (
	"fmt"
	"net"
	"strings"

	"github.com/meshd/meshd/internal/model"
)

// Virtual host domains, as istiod 1.29's generateVirtualHostDomains and
// GenerateAltVirtualHosts (pilot/pkg/networking/core/httproute.go) emit
// them for a proxy whose DNS domain is <namespace>.svc.<domain>: the host
// name, its absolute form with a trailing dot, the short names of a
// <name>.<ns>.svc.<domain> host (<name>, <name>.<ns>.svc, <name>.<ns> in
// the proxy's namespace, taken from the host name, not the object's
// namespace; <name>.<ns>, <name>.<ns>.svc in others), then the IPv4 VIPs.
// Other hosts (ServiceEntry hosts outside .svc.<domain>, wildcards) get
// the host name and its trailing-dot form only.
//
// Sidecars match without ports: their route configurations set
// ignore_port_in_host_matching (routes.go), as istiod's do, so
// "a.ns.svc.cluster.local:8080" matches "a.ns.svc.cluster.local".
// Proxyless gRPC clients match the authority as it is, so their domains
// carry each name also with ":<port>" (istiod: SidecarIgnorePort is false
// for proxyless gRPC).

// domainTable holds, for one Index, the sidecar domains of every service
// with an HTTP port (for scopes of the namespace its host name carries and
// for others), and the domains more than one service claims: only those
// can repeat in a route configuration, so only those are tracked while one
// is built (every view would otherwise insert every domain of the mesh in
// a map). Envoy compares domains without case (and so does uniqueDomains),
// so contested is keyed by the lower-case domain (domainKey).
type domainTable struct {
	lists     map[domainsKey][]string
	contested map[string]bool
}

// domainKey is d as Envoy compares domains: case-insensitively, as
// istiod's dedupeDomains does (it lower-cases the domains it has seen).
func domainKey(d string) string { return strings.ToLower(d) }

// isContested reports whether more than one service claims d, in any case.
func (t *domainTable) isContested(d string) bool { return t.contested[domainKey(d)] }

// domainsKey names the sidecar domains of a service for scopes of the
// namespace its host name carries (own) or of another (serviceDomains).
type domainsKey struct {
	svc *model.Service
	own bool
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
		if !hasHTTPPort(svc) {
			continue
		}
		ns := hostNamespace(svc.Hostname, x.domain)
		own := serviceDomains(svc, ns, x.domain, 0)
		t.lists[domainsKey{svc: svc, own: true}] = own
		t.lists[domainsKey{svc: svc}] = serviceDomains(svc, "", x.domain, 0)
		for _, d := range own { // a superset of the other namespaces' domains
			k := domainKey(d)
			if o, ok := owner[k]; ok && o != svc {
				t.contested[k] = true
			}
			owner[k] = svc
		}
	}
	x.domains.CompareAndSwap(nil, t)
	return x.domains.Load()
}

func hasHTTPPort(svc *model.Service) bool {
	for _, p := range svc.Ports {
		if p.Protocol.IsHTTP() {
			return true
		}
	}
	return false
}

// ownDomains reports whether a scope of namespace ns gets svc's
// own-namespace short names (the <name> of <name>.<ns>.svc.<domain>).
func ownDomains(svc *model.Service, ns, domain string) bool {
	hns := hostNamespace(svc.Hostname, domain)
	return hns != "" && hns == ns
}

// serviceDomains lists the domains of svc for a proxy of namespace ns,
// without repeats (in any case), in istiod's order: the host name, its alternative
// names (altHosts), the IPv4 VIPs; each also with ":<port>" unless port is
// 0 (sidecars). A bare "*" (the short name of a wildcard host in the
// proxy's namespace) is left out: it belongs to the catch-all virtual
// host, and Envoy accepts one per route configuration.
func serviceDomains(svc *model.Service, ns, domain string, port uint32) []string {
	out := make([]string, 0, 8)
	seen := make(map[string]bool, 8)
	add := func(ds ...string) {
		for _, d := range ds {
			if k := domainKey(d); d != "*" && !seen[k] {
				seen[k] = true
				out = append(out, d)
			}
		}
	}
	add(withPort(svc.Hostname, port)...)
	add(altHosts(svc.Hostname, ns, domain, port)...)
	for _, vip := range svc.VIPs {
		if isIPv4(vip) {
			add(withPort(vip, port)...)
		}
	}
	return out
}

// withPort is istiod's appendDomainPort: d, and d:port unless port is 0.
func withPort(d string, port uint32) []string {
	if port == 0 {
		return []string{d}
	}
	return []string{d, fmt.Sprintf("%s:%d", d, port)}
}

// altHosts is istiod's GenerateAltVirtualHosts for a proxy of namespace ns
// (DNS domain <ns>.svc.<domain>): the absolute name ("a.b.svc.cluster.local.",
// PILOT_ENABLE_ABSOLUTE_FQDN_VHOST_DOMAIN, on by default), then the short
// names of a host under .svc.<domain>.
func altHosts(host, ns, domain string, port uint32) []string {
	var out []string
	if net.ParseIP(host) == nil {
		out = append(out, host+".")
	}
	if port != 0 { // as istiod, also for a host that is an IP
		out = append(out, fmt.Sprintf("%s.:%d", host, port))
	}
	if !strings.HasSuffix(host, ".svc."+domain) {
		return out // not a Kubernetes-style name: short names could collide
	}
	return append(out, kubeAltHosts(host, ns, port)...)
}

// kubeAltHosts is istiod's generateAltVirtualHostsForKubernetesService:
// for <name>.<ns>.svc.<domain>, in the proxy's namespace <name>,
// <name>.<ns>.svc, <name>.<ns>; in another <name>.<ns>, <name>.<ns>.svc.
func kubeAltHosts(host, ns string, port uint32) []string {
	name, hns, ok := splitKubeHost(host)
	if !ok {
		return nil
	}
	nameNS := host[:len(name)+1+len(hns)] // <name>.<ns>
	var out []string
	if hns == ns {
		for _, d := range []string{name, nameNS + ".svc", nameNS} {
			out = append(out, withPort(d, port)...)
		}
		return out
	}
	for _, d := range []string{nameNS, nameNS + ".svc"} {
		out = append(out, withPort(d, port)...)
	}
	return out
}

// hostNamespace returns the <ns> of a host <name>.<ns>.svc.<domain> as
// istiod reads it (between the first dot and ".svc."), "" for other hosts.
func hostNamespace(host, domain string) string {
	if !strings.HasSuffix(host, ".svc."+domain) {
		return ""
	}
	_, ns, _ := splitKubeHost(host)
	return ns
}

// splitKubeHost splits a host <name>.<ns>.svc.<...> into <name> and <ns>
// as istiod reads them: up to the first dot, then up to ".svc.".
func splitKubeHost(host string) (name, ns string, ok bool) {
	ih := strings.Index(host, ".svc.")
	dot := strings.IndexByte(host, '.')
	if ih <= 0 || dot+1 > ih {
		return "", "", false
	}
	return host[:dot], host[dot+1 : ih], true
}
