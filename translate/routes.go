package translate

import (
	"fmt"
	"slices"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/meshd/meshd/internal/model"
)

// sidecarRoutes builds one RouteConfiguration per HTTP port ("8080"), with a
// virtual host per service on that port and istiod's catch-all virtual host
// (see catchAllVirtualHost). As istiod's, the configuration ignores the
// port in host matching: domains carry no ports (domains.go).
func (b *builder) sidecarRoutes(ports []uint32, services map[uint32][]*model.Service) []*route.RouteConfiguration {
	out := make([]*route.RouteConfiguration, 0, len(ports))
	for _, port := range ports {
		rc := &route.RouteConfiguration{Name: RouteName(port), ValidateClusters: falseValue(), IgnorePortInHostMatching: true}
		c := b.newDomainClaims(services[port])
		for _, svc := range services[port] {
			vh := b.virtualHost(svc, port, c)
			if vh != nil {
				rc.VirtualHosts = append(rc.VirtualHosts, vh)
			}
		}
		rc.VirtualHosts = append(rc.VirtualHosts, b.catchAllVirtualHost())
		out = append(out, rc)
	}
	return out
}

// domainClaims tracks, while one route configuration is built, the
// contested domains (domainTable) taken so far, lower-cased (domainKey),
// and the contested domains that are the host name of one of its services
// (istiod's knownFQDN, compared as written, as istiod compares it).
type domainClaims struct {
	t              *domainTable
	used, hostname map[string]bool
}

func (b *builder) newDomainClaims(services []*model.Service) domainClaims {
	c := domainClaims{t: b.x.domainTable(), used: map[string]bool{}, hostname: map[string]bool{}}
	for _, svc := range services {
		if c.t.isContested(svc.Hostname) {
			c.hostname[svc.Hostname] = true
		}
	}
	return c
}

// free reports whether svc may claim the contested domain d: no earlier
// service took it in any case, and it is not another service's host name
// that svc would claim as an alternative name (istiod's dedupeDomains:
// "foo.com" is the ServiceEntry's, not the short name of
// foo.com.svc.cluster.local).
func (c domainClaims) free(svc *model.Service, d string) bool {
	if c.used[domainKey(d)] {
		return false
	}
	return d == svc.Hostname || !c.hostname[d] || slices.Contains(svc.VIPs, d)
}

// virtualHost builds the virtual host of svc on port; domains already used
// by an earlier (older or alphabetically first) service are skipped, because
// Envoy rejects a RouteConfiguration with duplicate domains. nil when no
// domain is left.
func (b *builder) virtualHost(svc *model.Service, port uint32, c domainClaims) *route.VirtualHost {
	own := ownDomains(svc, b.scope.Namespace, b.x.domain)
	all, ok := c.t.lists[domainsKey{svc: svc, own: own}]
	if !ok { // a copy limited to a Sidecar's egress ports (portFilter.apply)
		all = serviceDomains(svc, b.scope.Namespace, b.x.domain, 0)
	}
	domains := all
	for i, d := range all {
		if c.t.isContested(d) && !c.free(svc, d) {
			domains = slices.Clip(all[:i])
			for _, d := range all[i:] {
				if !c.t.isContested(d) || c.free(svc, d) {
					domains = append(domains, d)
				}
			}
			break
		}
	}
	for _, d := range domains {
		if c.t.isContested(d) {
			c.used[domainKey(d)] = true
		}
	}
	if len(domains) == 0 {
		return nil
	}
	vs := b.virtualServiceFor(svc.Hostname)
	k := vhostKey{svc: svc, port: port, vs: vs, grpc: b.grpc, own: own}
	if len(domains) < len(all) {
		k.domains = joinDomains(domains) // some taken by an earlier service
	}
	if vs != nil && vs.bySource {
		k.namespace, k.labels = b.scope.Namespace, b.scope.Labels
	}
	return b.x.share(k, func() any {
		return &route.VirtualHost{
			Name:    fmt.Sprintf("%s:%d", svc.Hostname, port),
			Domains: domains,
			Routes:  b.routesFor(svc, port, vs),
		}
	}).(*route.VirtualHost)
}

// httpRoutes returns the routes for traffic to svc on port: its
// VirtualService's routes if one applies, else the default route.
func (b *builder) httpRoutes(svc *model.Service, port uint32) []*route.Route {
	return b.routesFor(svc, port, b.virtualServiceFor(svc.Hostname))
}

// routesFor is httpRoutes given the VirtualService that applies (nil: none).
func (b *builder) routesFor(svc *model.Service, port uint32, vs *virtualService) []*route.Route {
	if vs != nil {
		if routes := b.x.virtualServiceRoutes(vs, b.routeCtx(port)); len(routes) > 0 {
			return routes
		}
	}
	return []*route.Route{defaultRoute(ClusterName(port, "", svc.Hostname))}
}

// routeCtx describes the scope and listener port to route translation.
func (b *builder) routeCtx(port uint32) routeCtx {
	return routeCtx{port: port, namespace: b.scope.Namespace, labels: b.scope.LabelMap(), grpc: b.grpc}
}
