package translate

import (
	"fmt"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/meshd/meshd/internal/model"
)

// sidecarRoutes builds one RouteConfiguration per HTTP port ("8080"), with a
// virtual host per service on that port and istiod's catch-all virtual host
// (see catchAllVirtualHost).
func (b *builder) sidecarRoutes(ports []uint32, services map[uint32][]*model.Service) []*route.RouteConfiguration {
	out := make([]*route.RouteConfiguration, 0, len(ports))
	for _, port := range ports {
		rc := &route.RouteConfiguration{Name: RouteName(port), ValidateClusters: falseValue()}
		used := map[string]bool{}
		for _, svc := range services[port] {
			vh := b.virtualHost(svc, port, used)
			if vh != nil {
				rc.VirtualHosts = append(rc.VirtualHosts, vh)
			}
		}
		rc.VirtualHosts = append(rc.VirtualHosts, b.catchAllVirtualHost())
		out = append(out, rc)
	}
	return out
}

// virtualHost builds the virtual host of svc on port; domains already used
// by an earlier (older or alphabetically first) service are skipped, because
// Envoy rejects a RouteConfiguration with duplicate domains. nil when no
// domain is left.
func (b *builder) virtualHost(svc *model.Service, port uint32, used map[string]bool) *route.VirtualHost {
	var domains []string
	add := func(d string) {
		if !used[d] {
			used[d] = true
			domains = append(domains, d)
		}
	}
	for _, name := range hostNames(svc, b.scope.Namespace) {
		add(name)
		add(fmt.Sprintf("%s:%d", name, port))
	}
	for _, vip := range svc.VIPs {
		if isIPv4(vip) {
			add(vip)
			add(fmt.Sprintf("%s:%d", vip, port))
		}
	}
	if len(domains) == 0 {
		return nil
	}
	return &route.VirtualHost{
		Name:    fmt.Sprintf("%s:%d", svc.Hostname, port),
		Domains: domains,
		Routes:  b.httpRoutes(svc, port),
	}
}

// httpRoutes returns the routes for traffic to svc on port: its
// VirtualService's routes if one applies, else the default route.
func (b *builder) httpRoutes(svc *model.Service, port uint32) []*route.Route {
	if vs := b.virtualServiceFor(svc.Hostname); vs != nil {
		routes := b.x.virtualServiceRoutes(vs, b.routeCtx(port))
		if len(routes) > 0 {
			return routes
		}
	}
	return []*route.Route{defaultRoute(ClusterName(port, "", svc.Hostname))}
}

// routeCtx describes the scope and listener port to route translation.
func (b *builder) routeCtx(port uint32) routeCtx {
	return routeCtx{port: port, namespace: b.scope.Namespace, labels: b.scope.LabelMap(), grpc: b.grpc}
}
