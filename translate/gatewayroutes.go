package translate

import (
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
)

// maxDirectResponseBody is istiod's DefaultMaxDirectResponseBodySizeBytes
// (1 MiB, what its webhook accepts) for gateway route configurations;
// Envoy's default is 4 KiB.
const maxDirectResponseBody = 1024 * 1024

// gatewayRouteConfig is istiod's buildGatewayHTTPRouteConfig: the route
// configuration of the HTTP servers merged on one port. For each server
// (in merge order) and each VirtualService bound to its Gateway that the
// router sees (VirtualServicesForGateway order), the hosts the server and
// the VirtualService share (a server host "ns/h" only for VirtualServices
// of ns; wildcards on either side, the narrower name kept) get a virtual
// host "<host>:<server port>" with domain <host> (lower case; the
// configuration ignores ports in host matching) and the VirtualService's
// routes for that Gateway and port. A host routed by several
// VirtualServices (or Gateways) gets their routes one after the other,
// catch-all routes moved last. httpsRedirect makes the server's hosts
// require TLS (a 301 to https), with or without a VirtualService. Hosts
// with identical routes share one virtual host (istiod's route collapse).
// With no virtual host at all, istiod's "blackhole:<port>" (domain "*",
// no routes) answers 404; a host without a VirtualService gets no virtual
// host, so Envoy answers it 404 too.
func (b *builder) gatewayRouteConfig(name string, servers []*boundServer) *route.RouteConfiguration {
	vhosts := map[string]*route.VirtualHost{}
	built := map[string][]*route.Route{} // by Gateway and VirtualService
	for _, bs := range servers {
		port := bs.server.GetPort().GetNumber()
		redirect := bs.server.GetTls().GetHttpsRedirect()
		for _, vs := range b.gatewayVirtualServices(bs.gw.name) {
			hosts := intersectHosts(serverHostsFor(bs.server.GetHosts(), vs.cfg.Namespace), vs.hosts)
			if len(hosts) == 0 {
				continue
			}
			key := bs.gw.name + "|" + vs.cfg.Key()
			routes, ok := built[key]
			if !ok {
				routes = b.gatewayHTTPRoutes(vs, bs)
				built[key] = routes
			}
			if len(routes) == 0 {
				continue
			}
			for _, h := range hosts {
				h = strings.ToLower(h)
				if vh, ok := vhosts[h]; ok {
					vh.Routes = append(vh.Routes, routes...)
					if redirect {
						vh.RequireTls = route.VirtualHost_ALL
					}
					continue
				}
				vhosts[h] = gatewayVirtualHost(h, port, slices.Clone(routes), redirect)
			}
		}
		if !redirect {
			continue
		}
		for _, h := range bs.server.GetHosts() {
			// istiod keeps a "ns/" prefix here, a domain no request has:
			// meshd redirects the host itself.
			if _, name, found := strings.Cut(h, "/"); found {
				h = name
			}
			h = strings.ToLower(h)
			if vh, ok := vhosts[h]; ok {
				vh.RequireTls = route.VirtualHost_ALL
				continue
			}
			vhosts[h] = gatewayVirtualHost(h, port, nil, true)
		}
	}
	rc := &route.RouteConfiguration{
		Name: name, ValidateClusters: falseValue(), IgnorePortInHostMatching: true,
		MaxDirectResponseBodySizeBytes: wrapperspb.UInt32(maxDirectResponseBody),
	}
	if len(vhosts) == 0 {
		port := servers[0].server.GetPort().GetNumber()
		rc.VirtualHosts = []*route.VirtualHost{{Name: domainName("blackhole", port), Domains: []string{"*"}}}
		return rc
	}
	for _, vh := range collapseVirtualHosts(vhosts) {
		vh.Routes = catchAllLast(vh.Routes)
		rc.VirtualHosts = append(rc.VirtualHosts, vh)
	}
	sort.SliceStable(rc.VirtualHosts, func(i, j int) bool { return rc.VirtualHosts[i].Name < rc.VirtualHosts[j].Name })
	return rc
}

// gatewayVirtualHost is a gateway's virtual host for one host, counting
// attempts in x-envoy-attempt-count as istiod's gateways do.
func gatewayVirtualHost(host string, port uint32, routes []*route.Route, redirect bool) *route.VirtualHost {
	vh := &route.VirtualHost{Name: domainName(host, port), Domains: []string{host}, Routes: routes, IncludeRequestAttemptCount: true}
	if redirect {
		vh.RequireTls = route.VirtualHost_ALL
	}
	return vh
}

// domainName is istiod's util.DomainName: host:port.
func domainName(host string, port uint32) string {
	return net.JoinHostPort(host, strconv.FormatUint(uint64(port), 10))
}

// gatewayHTTPRoutes translates a VirtualService's HTTP routes for a
// server of its Gateway, as istiod's BuildHTTPRoutesForVirtualService with
// the Gateway's name: matches listing gateways apply when they name it.
// nil when no route applies (the VirtualService is skipped, as istiod
// skips it) or when a destination has no port the server's port can stand
// for (reported; meshd never names a missing cluster).
func (b *builder) gatewayHTTPRoutes(vs *gatewayVirtualService, bs *boundServer) []*route.Route {
	rc := b.routeCtx(bs.server.GetPort().GetNumber())
	rc.gateway, rc.tls = bs.gw.name, bs.server.GetTls() != nil
	routes := b.x.virtualServiceRoutes(vs.virtualService, rc)
	if len(routes) == 0 {
		return nil
	}
	var dests []fieldDestination
	for i, hr := range vs.spec.GetHttp() {
		p := fmt.Sprintf("spec.http[%d]", i)
		for j, d := range hr.GetRoute() {
			dests = append(dests, fieldDestination{fmt.Sprintf("%s.route[%d].destination", p, j), d.GetDestination()})
		}
		if m := hr.GetMirror(); m != nil {
			dests = append(dests, fieldDestination{p + ".mirror", m})
		}
		for j, m := range hr.GetMirrors() {
			dests = append(dests, fieldDestination{fmt.Sprintf("%s.mirrors[%d].destination", p, j), m.GetDestination()})
		}
	}
	if !b.destinationsKnown(vs, dests, bs) {
		return nil
	}
	return routes
}

// fieldDestination is a destination and where it is in its VirtualService.
type fieldDestination struct {
	field string
	d     *networking.Destination
}

// l4Destinations lists the destinations of a TCP or TLS route whose
// field path is field ("spec.tcp[0]").
func l4Destinations(field string, dests []*networking.RouteDestination) []fieldDestination {
	out := make([]fieldDestination, 0, len(dests))
	for j, d := range dests {
		out = append(out, fieldDestination{fmt.Sprintf("%s.route[%d].destination", field, j), d.GetDestination()})
	}
	return out
}

// destinationsKnown reports whether every destination has a cluster when
// reached through the server's port (a destination without port on a
// service of several ports takes the server's), reporting the first that
// has not.
func (b *builder) destinationsKnown(vs *gatewayVirtualService, dests []fieldDestination, bs *boundServer) bool {
	port := bs.server.GetPort().GetNumber()
	for _, fd := range dests {
		if host, ok := b.x.knownCluster(vs.cfg.Namespace, fd.d, port); !ok {
			b.gwErrs.vs(vs, fd.field+".port", "service %q has no port %d (the port of server %d of Gateway %s, which a "+
				"destination without port takes): set destination.port; the VirtualService is left out of that server",
				host, port, bs.index, bs.gw.name)
			return false
		}
	}
	return true
}

// knownCluster reports whether the service of a destination of a
// VirtualService of namespace ns has the port the destination names
// through listener port port (the rest was checked when the
// VirtualService was accepted), and returns the service's host name.
func (x *Index) knownCluster(ns string, d *networking.Destination, port uint32) (string, bool) {
	p, _, host, _ := ParseClusterName(x.destinationCluster(ns, d, port))
	svc, ok := x.byHost[host]
	if !ok {
		return host, false
	}
	_, ok = svc.PortByNumber(p)
	return host, ok
}

// collapseVirtualHosts is istiod's collapseDuplicateRoutes: in istiod's
// host order (exact before wildcard, longer first, then alphabetical), a
// host whose virtual host has the very same routes (the same values, in
// order) as the last one recorded with those routes, and the same TLS
// requirement, joins that one's domains; otherwise it is recorded.
func collapseVirtualHosts(in map[string]*route.VirtualHost) []*route.VirtualHost {
	hosts := make([]string, 0, len(in))
	for h := range in {
		hosts = append(hosts, h)
	}
	sort.Slice(hosts, func(i, j int) bool { return moreSpecific(hosts[i], hosts[j]) })
	var out []*route.VirtualHost
	known := map[string]*route.VirtualHost{}
	for _, h := range hosts {
		vh := in[h]
		key := routesIdentity(vh.Routes)
		if o, ok := known[key]; ok && o.RequireTls == vh.RequireTls && o.IncludeRequestAttemptCount == vh.IncludeRequestAttemptCount {
			o.Domains = append(o.Domains, vh.Domains...)
			continue
		}
		known[key] = vh
		out = append(out, vh)
	}
	return out
}

// routesIdentity names a list of routes by the identity of its values, as
// istiod's hashRouteList hashes pointers.
func routesIdentity(routes []*route.Route) string {
	var b strings.Builder
	for _, r := range routes {
		fmt.Fprintf(&b, "%p,", r)
	}
	return b.String()
}

// moreSpecific is istiod's host.MoreSpecific: exact names before
// wildcards, then longer first, then alphabetical.
func moreSpecific(a, b string) bool {
	aw, bw := strings.HasPrefix(a, "*"), strings.HasPrefix(b, "*")
	if aw != bw {
		return !aw
	}
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a < b
}

// catchAllLast is istiod's SortVHostRoutes: catch-all routes moved to the
// end, the others keeping their order.
func catchAllLast(routes []*route.Route) []*route.Route {
	out := make([]*route.Route, 0, len(routes))
	var all []*route.Route
	for _, r := range routes {
		if isCatchAll(r) {
			all = append(all, r)
		} else {
			out = append(out, r)
		}
	}
	return append(out, all...)
}
