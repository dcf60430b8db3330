package translate

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// Gateways: the listeners and routes of router scopes (istiod's
// pilot/pkg/networking/core/gateway.go and MergeGateways in
// pilot/pkg/model/gateway.go). A router gets the Gateways whose selector
// matches its labels (of its own namespace only with
// Options.ScopeGatewayToNamespace); their servers are merged per port
// (gatewaymerge.go) into listeners (gatewaylisteners.go) and route
// configurations (gatewayroutes.go) built from the VirtualServices bound
// to them (gatewayvs.go).
//
// Served: HTTP servers (httpsRedirect included), TCP servers, TLS or
// HTTPS servers in PASSTHROUGH mode, and servers terminating TLS (SIMPLE,
// MUTUAL, OPTIONAL_MUTUAL with credentialName over ADS; certificate files
// and ISTIO_MUTUAL for gateways run by Istio's agent: gatewaytls.go). Not
// yet (issue #14): AUTO_PASSTHROUGH and servers with a bind address. Those
// are reported on their Gateway and get no filter chain; they still take
// part in port merging, so that conflicts are those istiod finds.

// gatewayConfig is a Gateway with the servers meshd merges.
type gatewayConfig struct {
	cfg      *model.Config
	name     string // "namespace/name"
	selector map[string]string
	servers  []*gatewayServer
	// leftOut are the servers left out of merging (no port, a bind
	// address), with the reason, for /debug/gatewayz.
	leftOut []leftOutServer
}

// leftOutServer is a server of a Gateway that gets no filter chain, and why.
type leftOutServer struct {
	index  int
	server *networking.Server
	reason string
}

// gatewayServer is one server of a Gateway.
type gatewayServer struct {
	gw    *gatewayConfig
	index int // in spec.servers
	// server has its hosts sanitized as istiod's
	// sanitizeServerHostNamespace: "./h" is "<namespace>/h", "*/h" is
	// "h", "*/*" makes the hosts ["*"].
	server *networking.Server
	proto  model.Protocol
	// pending says why the server gets no filter chain yet; "" when it is
	// served.
	pending string
}

func (s *gatewayServer) field(suffix string) string {
	return fmt.Sprintf("spec.servers[%d]%s", s.index, suffix)
}

// isTLSServer is istiod's gateway.IsTLSServer: not HTTP, with TLS settings.
func (s *gatewayServer) isTLSServer() bool { return s.server.GetTls() != nil && !s.proto.IsHTTP() }

// isPassthrough is istiod's gateway.IsPassThroughServer.
func (s *gatewayServer) isPassthrough() bool {
	switch s.server.GetTls().GetMode() {
	case networking.ServerTLSSettings_PASSTHROUGH, networking.ServerTLSSettings_AUTO_PASSTHROUGH:
		return s.server.GetTls() != nil
	}
	return false
}

// isHTTPServer is istiod's gateway.IsHTTPServer: HTTP, or HTTPS that
// terminates TLS (served through an HTTP connection manager).
func (s *gatewayServer) isHTTPServer() bool {
	return s.proto.IsHTTP() || (s.proto == model.ProtocolHTTPS && !s.isPassthrough())
}

// indexGateways indexes the Gateways, oldest first, reporting the servers
// meshd does not serve yet, then reports the VirtualServices bound to a
// missing Gateway or to none of its hosts (reportGatewayBindings) and the
// conflicts port merging finds (reportGatewayConflicts).
func (x *Index) indexGateways() {
	for _, cfg := range x.snap.Configs(model.KindGateway) {
		spec := cfg.Spec.(*networking.Gateway)
		gw := &gatewayConfig{cfg: cfg, name: cfg.Key(), selector: spec.GetSelector()}
		for i, s := range spec.GetServers() {
			if gs := x.indexServer(gw, i, s); gs != nil {
				gw.servers = append(gw.servers, gs)
			}
		}
		x.gateways = append(x.gateways, gw)
	}
	x.reportGatewayBindings()
	if len(x.gateways) > 0 {
		x.reportGatewayConflicts()
	}
}

// indexServer checks one server; nil when it is left out of merging.
func (x *Index) indexServer(gw *gatewayConfig, i int, s *networking.Server) *gatewayServer {
	gs := &gatewayServer{gw: gw, index: i, proto: model.ParseProtocol(s.GetPort().GetProtocol())}
	cfg := gw.cfg
	report := func(field, format string, args ...any) {
		x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, gs.field(field), format, args...)
	}
	leaveOut := func(field, reason string) *gatewayServer {
		report(field, "%s", reason)
		gw.leftOut = append(gw.leftOut, leftOutServer{index: i, server: s, reason: reason})
		return nil
	}
	switch {
	case s.GetPort() == nil || s.GetPort().GetNumber() == 0:
		return leaveOut(".port", "a server needs a port; this server is ignored")
	case s.GetBind() != "":
		return leaveOut(".bind", "servers with a bind address are not served yet (issue #14); this server is left out")
	}
	gs.server = sanitizeServerHosts(s, cfg.Namespace)
	tls := s.GetTls()
	if tls == nil || gs.proto.IsHTTP() {
		return gs // HTTP servers ignore TLS settings but httpsRedirect
	}
	if tls.GetMode() == networking.ServerTLSSettings_AUTO_PASSTHROUGH {
		gs.pending = "AUTO_PASSTHROUGH is not served yet (issue #14)"
		report(".tls.mode", "%s; this server is left out", gs.pending)
	}
	return gs
}

// sanitizeServerHosts is istiod's sanitizeServerHostNamespace: "./h"
// becomes "<ns>/h", "*/h" becomes "h", and "*/*" makes the hosts ["*"].
func sanitizeServerHosts(s *networking.Server, ns string) *networking.Server {
	if !strings.Contains(strings.Join(s.GetHosts(), ","), "/") {
		return s
	}
	out := proto.Clone(s).(*networking.Server)
	for i, h := range out.Hosts {
		hostNS, name, found := strings.Cut(h, "/")
		switch {
		case !found:
		case hostNS == ".":
			out.Hosts[i] = ns + "/" + name
		case hostNS == "*" && name == "*":
			out.Hosts = []string{"*"}
			return out
		case hostNS == "*":
			out.Hosts[i] = name
		}
	}
	return out
}

// gatewaysFor returns the Gateways of a router scope, oldest first: those
// whose selector matches its labels (an empty selector matches every
// router), of its namespace only with Options.ScopeGatewayToNamespace.
func (x *Index) gatewaysFor(scope model.Scope) []*gatewayConfig {
	labels := scope.LabelMap()
	var out []*gatewayConfig
	for _, gw := range x.gateways {
		if x.scopeGatewayToNamespace && gw.cfg.Namespace != scope.Namespace {
			continue
		}
		if labelsMatch(gw.selector, labels) {
			out = append(out, gw)
		}
	}
	return out
}

// disablePortTranslationLabel is istiod's
// DisableGatewayPortTranslationLabel: a Service with it is not used to
// translate Gateway ports to target ports.
const disablePortTranslationLabel = "experimental.istio.io/disable-gateway-port-translation"

// listenerPort is istiod's resolvePorts for Gateways selected by labels:
// the port a server's port number is listened on. A service of the
// router's namespace whose selector matches its labels (a service the
// gateway workload backs, taken in hostname order) with that port gives
// its target port (a Service on 80 targeting 8080 makes the listener
// 0.0.0.0_8080, as Istio's gateway charts do); else the number itself.
func (b *builder) listenerPort(number uint32) uint32 {
	labels := b.scope.LabelMap()
	for _, svc := range b.x.byNamespace[b.scope.Namespace] {
		if len(svc.Selector) == 0 || !labelsMatch(svc.Selector, labels) {
			continue
		}
		if _, off := svc.Labels[disablePortTranslationLabel]; off {
			continue
		}
		if p, ok := svc.PortByNumber(number); ok {
			return b.targetPort(svc, p, labels)
		}
	}
	return number
}

// gatewayMergeKey names a merge: the Gateways' names and the port
// translations.
type gatewayMergeKey struct{ gateways, ports string }

// mergedGateway merges the scope's Gateways (nil when it has none), once
// per Index for every router scope with the same Gateways and ports.
func (b *builder) mergedGateway() *mergedGateway {
	gws := b.x.gatewaysFor(b.scope)
	if len(gws) == 0 {
		return nil
	}
	ports := map[uint32]uint32{}
	var names, pk strings.Builder
	for _, gw := range gws {
		names.WriteString(gw.name + ",")
		for _, s := range gw.servers {
			n := s.server.GetPort().GetNumber()
			if _, ok := ports[n]; !ok {
				ports[n] = b.listenerPort(n)
				if ports[n] != n {
					fmt.Fprintf(&pk, "%d:%d,", n, ports[n])
				}
			}
		}
	}
	key := gatewayMergeKey{gateways: names.String(), ports: pk.String()}
	return b.x.shared.get(key, func() any {
		return mergeGateways(gws, func(n uint32) uint32 { return ports[n] })
	}).(*mergedGateway)
}

// gatewayErrors collects the config errors found while a router's
// listeners and routes are built; only the Index's own pass
// (reportGatewayConflicts) collects them, Build does not.
type gatewayErrors struct {
	list []model.ObjectError
}

// vs reports a problem with a VirtualService.
func (e *gatewayErrors) vs(vs *gatewayVirtualService, field, format string, args ...any) {
	e.add(vs.cfg, field, format, args...)
}

// gateway reports a problem with a server of a Gateway.
func (e *gatewayErrors) gateway(s *boundServer, field, format string, args ...any) {
	e.add(s.gw.cfg, s.field(field), format, args...)
}

func (e *gatewayErrors) add(cfg *model.Config, field, format string, args ...any) {
	if e == nil {
		return
	}
	e.list = append(e.list, model.ObjectError{Kind: cfg.Kind, Namespace: cfg.Namespace, Name: cfg.Name,
		Source: cfg.Source, Field: field, Message: fmt.Sprintf(format, args...)})
}

// reportGatewayConflicts reports what merging the Gateways and building
// their listeners and routes rejects (conflicting servers, duplicate SNI
// hosts, destinations without the server's port, TLS secrets a gateway
// cannot get), once per object and field. Config errors are the Index's,
// found before any proxy asks, so the gateway workloads are stood for by
// router scopes (reportingScopes). Every Gateway that a scope's selector
// selects (and, with ScopeGatewayToNamespace, of that namespace) merges
// with it, as on a gateway Deployment labelled as the selector says. A
// gateway whose labels match several selectors merges more Gateways than
// any of these scopes: a conflict only such a mix has is not reported (it
// is still resolved as istiod resolves it, and logged nowhere, as istiod
// only counts it in pilot_total_rejected_configs).
func (x *Index) reportGatewayConflicts() {
	scopes := x.reportingScopes()
	sort.Slice(scopes, func(i, j int) bool { return scopes[i].Key() < scopes[j].Key() })
	reported := map[model.ObjectError]bool{}
	x.gatewayErrors = nil
	for _, sc := range scopes {
		b := newBuilder(x, sc)
		b.gwErrs = &gatewayErrors{}
		m := b.mergedGateway()
		if m == nil {
			continue
		}
		b.gatewayListeners(m)
		for _, e := range append(append([]model.ObjectError(nil), m.errs...), b.gwErrs.list...) {
			if !reported[e] {
				reported[e] = true
				x.gatewayErrors = append(x.gatewayErrors, e)
			}
		}
	}
}

// reportingScopes are the router scopes standing for each Gateway's
// workloads: its selector as the labels, in each namespace where a
// workload (Pod) carrying those labels runs, since credentialName Secrets
// are looked up in the gateway proxy's namespace; in the Gateway's own
// namespace when none is known. They are taken as gateways run by Istio's
// agent (Agent): what needs the agent is explained per proxy by
// /debug/gatewayz, not reported here. Sorted by key, each once.
func (x *Index) reportingScopes() []model.Scope {
	seen := map[string]bool{}
	var scopes []model.Scope
	add := func(ns string, selector map[string]string) {
		sc := model.Scope{Type: model.Router, Namespace: ns, Labels: model.CanonicalLabels(selector), Agent: true}
		if !seen[sc.Key()] {
			seen[sc.Key()] = true
			scopes = append(scopes, sc)
		}
	}
	for _, gw := range x.gateways {
		found := false
		for _, w := range x.snap.Workloads() {
			if (!x.scopeGatewayToNamespace || w.Namespace == gw.cfg.Namespace) && labelsMatch(gw.selector, w.Labels) {
				add(w.Namespace, gw.selector)
				found = true
			}
		}
		if !found {
			add(gw.cfg.Namespace, gw.selector)
		}
	}
	return scopes
}
