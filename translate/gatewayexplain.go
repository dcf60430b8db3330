package translate

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// GatewayExplanation says which Gateways a gateway (router) proxy gets
// and what they give it: the body of /debug/gatewayz, marshalled to JSON
// as is. Every list is in a deterministic order.
type GatewayExplanation struct {
	// Scope is the scope key ("router|envoy|istio-system|istio=egressgateway").
	Scope string `json:"scope"`
	// ScopeGatewayToNamespace is PILOT_SCOPE_GATEWAY_TO_NAMESPACE.
	ScopeGatewayToNamespace bool `json:"scopeGatewayToNamespace"`
	// Gateways are the Gateways the proxy gets, oldest first: the order
	// their servers are merged in.
	Gateways []GatewaySelection `json:"gateways"`
	// SkippedGateways are the other Gateways, with the reason.
	SkippedGateways []GatewaySelection `json:"skippedGateways,omitempty"`
	// Ports lists the merged servers that get filter chains, per listener
	// port (and protocol of its first server), by port.
	Ports []GatewayPort `json:"ports"`
	// LeftOutServers are the servers of those Gateways that get no filter
	// chain, and why.
	LeftOutServers []GatewayLeftOutServer `json:"leftOutServers,omitempty"`
	// UnboundVirtualServices are the VirtualServices that name one of
	// those Gateways but are not routed by it, and why.
	UnboundVirtualServices []GatewayUnboundVirtualService `json:"unboundVirtualServices,omitempty"`
	// ConfigErrors are the config errors of those Gateways and of the
	// VirtualServices naming them, including conflicts that only this
	// proxy's mix of Gateways has.
	ConfigErrors []model.ObjectError `json:"configErrors,omitempty"`
}

// GatewaySelection is a Gateway and why the proxy gets it or not.
type GatewaySelection struct {
	Namespace string            `json:"namespace"`
	Name      string            `json:"name"`
	Selector  map[string]string `json:"selector,omitempty"`
	Reason    string            `json:"reason"`
}

// GatewayPort is the servers merged on one listener port.
type GatewayPort struct {
	// Port is the port listened on: the servers' port number, or the
	// target port of the gateway's Service for it (80 → 8080).
	Port     uint32 `json:"port"`
	Protocol string `json:"protocol"`
	// Listener is the listener the servers produce ("0.0.0.0_8080"),
	// empty when none of them got a filter chain (a TCP or TLS server
	// without an applicable route).
	Listener string `json:"listener,omitempty"`
	// RouteConfig is the route configuration of HTTP servers ("http.8080")
	// and VirtualHosts the names of its virtual hosts.
	RouteConfig  string          `json:"routeConfig,omitempty"`
	VirtualHosts []string        `json:"virtualHosts,omitempty"`
	Servers      []GatewayServer `json:"servers"`
}

// GatewayServer is one merged server (spec.servers[index] of Gateway).
type GatewayServer struct {
	Gateway       string `json:"gateway"`
	Index         int    `json:"index"`
	Port          uint32 `json:"port"`
	PortName      string `json:"portName,omitempty"`
	Protocol      string `json:"protocol"`
	TLSMode       string `json:"tlsMode,omitempty"`
	HTTPSRedirect bool   `json:"httpsRedirect,omitempty"`
	// RouteConfig and VirtualHosts are an HTTPS server's own route
	// configuration ("https.443.https.web.bank") when it terminates TLS.
	RouteConfig  string        `json:"routeConfig,omitempty"`
	VirtualHosts []string      `json:"virtualHosts,omitempty"`
	Hosts        []GatewayHost `json:"hosts"`
}

// GatewayHost is one host of a server ("./h" resolved to "<ns>/h") and
// the VirtualServices bound to it.
type GatewayHost struct {
	Host            string               `json:"host"`
	VirtualServices []GatewayHostBinding `json:"virtualServices"`
	// Note says what happens to the host when nothing routes it.
	Note string `json:"note,omitempty"`
}

// GatewayHostBinding is a VirtualService bound to a server host: the
// VirtualService hosts it routes there, and the routes (HTTP), TCP routes
// or TLS route matches it gives the server.
type GatewayHostBinding struct {
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Hosts     []string `json:"hosts"`
	Routes    int      `json:"routes"`
	Note      string   `json:"note,omitempty"`
}

// GatewayLeftOutServer is a server that gets no filter chain.
type GatewayLeftOutServer struct {
	Gateway  string   `json:"gateway"`
	Index    int      `json:"index"`
	Port     uint32   `json:"port,omitempty"`
	Protocol string   `json:"protocol,omitempty"`
	Hosts    []string `json:"hosts,omitempty"`
	Reason   string   `json:"reason"`
}

// GatewayUnboundVirtualService is a VirtualService naming a Gateway that
// does not route it.
type GatewayUnboundVirtualService struct {
	Gateway   string   `json:"gateway"`
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Hosts     []string `json:"hosts"`
	Reason    string   `json:"reason"`
}

// ExplainGateway explains the listeners and routes Build gives a router
// scope: which Gateways select it, how their servers merge per port, the
// VirtualServices bound per server host, and what is left out. It builds
// the scope's gateway listeners once (no clusters), which is cheap enough
// for a debug endpoint.
func ExplainGateway(x *Index, scope model.Scope) GatewayExplanation {
	b := newBuilder(x, scope)
	b.gwErrs = &gatewayErrors{}
	out := GatewayExplanation{Scope: scope.Key(), ScopeGatewayToNamespace: x.scopeGatewayToNamespace,
		Gateways: []GatewaySelection{}, Ports: []GatewayPort{}}
	out.Gateways, out.SkippedGateways = x.explainSelection(scope)
	gws := x.gatewaysFor(scope)
	for _, gw := range gws {
		for _, l := range gw.leftOut {
			out.LeftOutServers = append(out.LeftOutServers, GatewayLeftOutServer{Gateway: gw.name, Index: l.index,
				Port: l.server.GetPort().GetNumber(), Protocol: l.server.GetPort().GetProtocol(), Hosts: l.server.GetHosts(), Reason: l.reason})
		}
	}
	var errs []model.ObjectError
	if m := b.mergedGateway(); m != nil {
		var pending []GatewayLeftOutServer
		out.Ports, pending = b.explainPorts(m)
		out.LeftOutServers = append(out.LeftOutServers, pending...)
		for _, r := range m.rejected {
			out.LeftOutServers = append(out.LeftOutServers, leftOut(r.boundServer, r.reason))
		}
		errs = append(errs, m.errs...)
	}
	sort.SliceStable(out.LeftOutServers, func(i, j int) bool {
		a, c := out.LeftOutServers[i], out.LeftOutServers[j]
		return a.Gateway < c.Gateway || (a.Gateway == c.Gateway && a.Index < c.Index)
	})
	out.UnboundVirtualServices = b.explainUnbound(gws)
	out.ConfigErrors = x.gatewayConfigErrors(gws, append(errs, b.gwErrs.list...))
	return out
}

// explainSelection splits the Gateways into those the scope gets
// (gatewaysFor) and the others, with the reason.
func (x *Index) explainSelection(scope model.Scope) (selected, skipped []GatewaySelection) {
	selected = []GatewaySelection{}
	labels := scope.LabelMap()
	for _, gw := range x.gateways {
		s := GatewaySelection{Namespace: gw.cfg.Namespace, Name: gw.cfg.Name, Selector: gw.selector}
		switch {
		case x.scopeGatewayToNamespace && gw.cfg.Namespace != scope.Namespace:
			s.Reason = fmt.Sprintf("namespace %s is not the proxy's (%s) and PILOT_SCOPE_GATEWAY_TO_NAMESPACE is on",
				gw.cfg.Namespace, scope.Namespace)
			skipped = append(skipped, s)
			continue
		case !labelsMatch(gw.selector, labels):
			s.Reason = "selector does not match the proxy's labels (" + scope.Labels + ")"
			skipped = append(skipped, s)
			continue
		case len(gw.selector) == 0:
			s.Reason = "empty selector: selects every gateway proxy"
		default:
			s.Reason = "selector matches the proxy's labels"
		}
		selected = append(selected, s)
	}
	return selected, skipped
}

// explainPorts builds the scope's gateway listeners and describes, per
// merged port, the servers that are served and what they produce; it
// returns the merged servers not served yet (pending) apart.
func (b *builder) explainPorts(m *mergedGateway) ([]GatewayPort, []GatewayLeftOutServer) {
	listeners, routes := b.gatewayListeners(m)
	emitted := map[string]bool{}
	for _, l := range listeners {
		emitted[l.Name] = true
	}
	vhosts := map[string][]string{}
	for _, rc := range routes {
		names := []string{}
		for _, vh := range rc.GetVirtualHosts() {
			names = append(names, vh.GetName())
		}
		vhosts[rc.GetName()] = names
	}
	out := []GatewayPort{}
	var pending []GatewayLeftOutServer
	for _, sp := range m.ports {
		ms := m.servers[sp]
		p := GatewayPort{Port: sp.number, Protocol: sp.protocol, Servers: []GatewayServer{}}
		if name := OutboundListenerName("0.0.0.0", sp.number); emitted[name] {
			p.Listener = name
		}
		if names, ok := vhosts[ms.routeName]; ok && ms.servers[0].proto.IsHTTP() {
			p.RouteConfig, p.VirtualHosts = ms.routeName, names
		}
		for _, bs := range ms.servers {
			reason := bs.pending
			if reason == "" {
				reason = b.gwLeftOut[bs]
			}
			if reason != "" {
				pending = append(pending, leftOut(bs, reason))
				continue
			}
			s := b.explainServer(bs)
			if names, ok := vhosts[bs.routeName]; ok && !bs.proto.IsHTTP() {
				s.RouteConfig, s.VirtualHosts = bs.routeName, names // an HTTPS server's own
			}
			p.Servers = append(p.Servers, s)
		}
		if len(p.Servers) > 0 {
			out = append(out, p)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		return out[i].Port < out[j].Port || (out[i].Port == out[j].Port && out[i].Protocol < out[j].Protocol)
	})
	return out, pending
}

// leftOut describes a merged server that gets no filter chain.
func leftOut(bs *boundServer, reason string) GatewayLeftOutServer {
	return GatewayLeftOutServer{Gateway: bs.gw.name, Index: bs.index, Port: bs.server.GetPort().GetNumber(),
		Protocol: bs.server.GetPort().GetProtocol(), Hosts: bs.server.GetHosts(), Reason: reason}
}

// explainServer describes a served server and, per host, the
// VirtualServices bound to it.
func (b *builder) explainServer(bs *boundServer) GatewayServer {
	p := bs.server.GetPort()
	s := GatewayServer{Gateway: bs.gw.name, Index: bs.index, Port: p.GetNumber(), PortName: p.GetName(),
		Protocol: p.GetProtocol(), HTTPSRedirect: bs.server.GetTls().GetHttpsRedirect(), Hosts: []GatewayHost{}}
	if tls := bs.server.GetTls(); tls != nil && !bs.proto.IsHTTP() {
		s.TLSMode = tls.GetMode().String()
	}
	tcpUsed := b.firstTCPRoute(bs)
	for _, h := range bs.server.GetHosts() {
		gh := GatewayHost{Host: h, VirtualServices: []GatewayHostBinding{}}
		for _, vs := range b.gatewayVirtualServices(bs.gw.name) {
			if !bindsServer([]string{h}, vs) {
				continue
			}
			hb := GatewayHostBinding{Namespace: vs.cfg.Namespace, Name: vs.cfg.Name,
				Hosts: intersectHosts(serverHostsFor([]string{h}, vs.cfg.Namespace), vs.hosts)}
			switch {
			case bs.isHTTPServer():
				hb.Routes, hb.Note = b.explainHTTPBinding(vs, bs)
			case bs.server.GetTls() == nil || terminatesTLS(bs.server.GetTls()):
				hb.Routes, hb.Note = explainTCPBinding(vs, bs, tcpUsed)
			default:
				hb.Routes = tlsMatches(vs, bs)
				if hb.Routes == 0 {
					hb.Note = fmt.Sprintf("no TLS route match applies to Gateway %s on port %d (match port or gateways)",
						bs.gw.name, p.GetNumber())
				}
			}
			gh.VirtualServices = append(gh.VirtualServices, hb)
		}
		gh.Note = hostNote(bs, gh.VirtualServices)
		s.Hosts = append(s.Hosts, gh)
	}
	return s
}

// hostNote says what becomes of a server host no VirtualService routes.
func hostNote(bs *boundServer, bound []GatewayHostBinding) string {
	if slices.ContainsFunc(bound, func(hb GatewayHostBinding) bool { return hb.Routes > 0 }) {
		return ""
	}
	switch {
	case bs.server.GetTls().GetHttpsRedirect():
		return "httpsRedirect: answered with a 301 to https"
	case bs.isHTTPServer():
		return "no VirtualService routes this host here: no virtual host, Envoy answers 404"
	}
	return "no VirtualService routes this host here: no filter chain for it"
}

// explainHTTPBinding counts the routes vs gives an HTTP server, as
// gatewayHTTPRoutes builds them, and says why there are none.
func (b *builder) explainHTTPBinding(vs *gatewayVirtualService, bs *boundServer) (int, string) {
	port := bs.server.GetPort().GetNumber()
	rc := b.routeCtx(port)
	rc.gateway, rc.tls = bs.gw.name, bs.server.GetTls() != nil
	if len(b.x.virtualServiceRoutes(vs.virtualService, rc)) == 0 {
		return 0, fmt.Sprintf("no HTTP route applies to Gateway %s on port %d (its matches name other gateways or ports)", bs.gw.name, port)
	}
	n := len(b.gatewayHTTPRoutes(vs, bs))
	if n == 0 {
		return 0, fmt.Sprintf("left out of this server: a destination has no port %d (see configErrors)", port)
	}
	return n, ""
}

// tcpRoute names the TCP route a TCP server proxies to.
type tcpRoute struct {
	vs    *gatewayVirtualService
	index int
}

// firstTCPRoute is the route gatewayTCPChain picks for a TCP server: the
// first applicable TCP route of the first bound VirtualService that has
// one (nil: none, or the server is not plain TCP).
func (b *builder) firstTCPRoute(bs *boundServer) *tcpRoute {
	if bs.proto.IsHTTP() || (bs.server.GetTls() != nil && !terminatesTLS(bs.server.GetTls())) {
		return nil
	}
	port := bs.server.GetPort().GetNumber()
	for _, vs := range b.gatewayVirtualServices(bs.gw.name) {
		if !bindsServer(bs.server.GetHosts(), vs) {
			continue
		}
		for i, r := range vs.spec.GetTcp() {
			if l4MultiMatch(r.GetMatch(), port, bs.gw.name) && len(r.GetRoute()) > 0 &&
				b.destinationsKnown(vs, l4Destinations(fmt.Sprintf("spec.tcp[%d]", i), r.GetRoute()), bs) {
				return &tcpRoute{vs: vs, index: i}
			}
		}
	}
	return nil
}

// explainTCPBinding says whether vs gives the TCP server its route.
func explainTCPBinding(vs *gatewayVirtualService, bs *boundServer, used *tcpRoute) (int, string) {
	switch {
	case used != nil && used.vs == vs:
		return 1, fmt.Sprintf("proxies to spec.tcp[%d]", used.index)
	case used != nil:
		return 0, fmt.Sprintf("not used: a TCP server proxies to the first applicable TCP route of the first bound "+
			"VirtualService (%s)", used.vs.cfg.Key())
	}
	return 0, fmt.Sprintf("no TCP route applies to Gateway %s on port %d (match port or gateways)", bs.gw.name, bs.server.GetPort().GetNumber())
}

// tlsMatches counts the TLS route matches of vs that apply to a TLS
// passthrough server (each is a filter chain, by SNI).
func tlsMatches(vs *gatewayVirtualService, bs *boundServer) int {
	n := 0
	for _, r := range vs.spec.GetTls() {
		if len(r.GetRoute()) == 0 {
			continue
		}
		for _, m := range r.GetMatch() {
			if l4SingleMatch(m.GetPort(), m.GetGateways(), bs.server.GetPort().GetNumber(), bs.gw.name) {
				n++
			}
		}
	}
	return n
}

// explainUnbound lists the VirtualServices naming one of gws that it does
// not route for the scope: not exported to the scope's namespace, or no
// host matching a server host.
func (b *builder) explainUnbound(gws []*gatewayConfig) []GatewayUnboundVirtualService {
	var out []GatewayUnboundVirtualService
	for _, gw := range gws {
		for _, vs := range b.x.gatewayVS {
			if !vs.gateways[gw.name] {
				continue
			}
			u := GatewayUnboundVirtualService{Gateway: gw.name, Namespace: vs.cfg.Namespace, Name: vs.cfg.Name, Hosts: vs.hosts}
			switch {
			case !b.x.vsExported(vs.virtualService, b.scope.Namespace):
				u.Reason = fmt.Sprintf("not exported to the proxy's namespace %s (exportTo %v)", b.scope.Namespace, vs.spec.GetExportTo())
			case !gw.servesVirtualService(vs):
				u.Reason = fmt.Sprintf("no host matches a server host of the Gateway %v (\"ns/host\" binds only VirtualServices of ns)",
					gw.allServerHosts())
			default:
				continue
			}
			out = append(out, u)
		}
	}
	return out
}

// gatewayConfigErrors returns the Index's errors on the Gateways gws and
// on the VirtualServices naming one of them (rejected ones included), with
// extra (found building this scope's listeners), once each, sorted.
func (x *Index) gatewayConfigErrors(gws []*gatewayConfig, extra []model.ObjectError) []model.ObjectError {
	if len(gws) == 0 {
		return nil
	}
	gwKeys := map[string]bool{}
	for _, gw := range gws {
		gwKeys[gw.name] = true
	}
	vsKeys := map[string]bool{}
	for _, cfg := range x.snap.Configs(model.KindVirtualService) {
		spec := cfg.Spec.(*networking.VirtualService)
		if boundGateway(spec.GetGateways(), cfg.Namespace, gwKeys) != "" {
			vsKeys[cfg.Key()] = true
		}
	}
	seen := map[model.ObjectError]bool{}
	var out []model.ObjectError
	for _, e := range append(slices.Clone(x.allErrors), extra...) {
		key := e.Namespace + "/" + e.Name
		relevant := (e.Kind == model.KindGateway && gwKeys[key]) || (e.Kind == model.KindVirtualService && vsKeys[key])
		if relevant && !seen[e] {
			seen[e] = true
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return errorLess(out[i], out[j]) })
	return out
}

// errorLess orders config errors by kind, namespace, name, field, message.
func errorLess(a, b model.ObjectError) bool {
	ka := strings.Join([]string{string(a.Kind), a.Namespace, a.Name, a.Field, a.Message}, "\x00")
	kb := strings.Join([]string{string(b.Kind), b.Namespace, b.Name, b.Field, b.Message}, "\x00")
	return ka < kb
}
