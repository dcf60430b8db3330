package xds

import (
	"errors"
	"fmt"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// Proxies returns the status of every connected stream, sorted by node ID.
func (s *Server) Proxies() []ProxyStatus { return s.tracker.snapshot() }

// LastPush returns what the last push did.
func (s *Server) LastPush() PushStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastPush
}

// ConfigErrors returns every user-config problem known at the last push:
// objects the providers could not convert, and objects the translator
// rejected (unknown hosts, conflicts).
func (s *Server) ConfigErrors() []model.ObjectError {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index == nil {
		return nil
	}
	return configErrors(s.index)
}

// ConfigDump returns, in Envoy's admin ConfigDump shape, the config served to
// the proxy whose node ID (or "pod.namespace" ID) is proxyID, with the
// version the proxy last received of each type. Secrets are shown without
// their private keys, as Envoy's own dump shows them.
func (s *Server) ConfigDump(proxyID string) (*adminv3.ConfigDump, error) {
	var ps *ProxyStatus
	for _, p := range s.Proxies() {
		if p.NodeID == proxyID || p.ID == proxyID {
			p := p
			ps = &p
			break
		}
	}
	if ps == nil {
		return nil, fmt.Errorf("proxy %q is not connected", proxyID)
	}
	// ss.out is rewritten by every push under s.mu: read it under s.mu too.
	var out *translate.Output
	s.mu.Lock()
	if ss := s.scopes[ps.Scope]; ss != nil && ss.snap != nil {
		out = s.scopeOutput(ss)
	}
	s.mu.Unlock()
	if out == nil {
		return nil, fmt.Errorf("proxy %q: scope %s has no config yet", proxyID, ps.Scope)
	}
	ver := func(typeURL string) string { return ps.Types[ShortType(typeURL)].SentVersion }
	ld := &adminv3.ListenersConfigDump{}
	for _, l := range out.Listeners {
		ld.DynamicListeners = append(ld.DynamicListeners, &adminv3.ListenersConfigDump_DynamicListener{
			Name: l.Name, ActiveState: &adminv3.ListenersConfigDump_DynamicListenerState{
				VersionInfo: ver(resourcev3.ListenerType), Listener: mustAny(l)},
		})
	}
	rd := &adminv3.RoutesConfigDump{}
	for _, r := range out.Routes {
		rd.DynamicRouteConfigs = append(rd.DynamicRouteConfigs, &adminv3.RoutesConfigDump_DynamicRouteConfig{
			VersionInfo: ver(resourcev3.RouteType), RouteConfig: mustAny(r)})
	}
	cd := &adminv3.ClustersConfigDump{VersionInfo: ver(resourcev3.ClusterType)}
	for _, c := range out.Clusters {
		cd.DynamicActiveClusters = append(cd.DynamicActiveClusters, &adminv3.ClustersConfigDump_DynamicCluster{
			VersionInfo: ver(resourcev3.ClusterType), Cluster: mustAny(c)})
	}
	// Endpoints as served now by the mesh-wide EDS cache (the scope's own
	// build is not redone on the endpoint fast path).
	names := make([]string, 0, len(out.Endpoints))
	for _, e := range out.Endpoints {
		names = append(names, e.ClusterName)
	}
	ed := &adminv3.EndpointsConfigDump{}
	for _, e := range s.eds.get(names...) {
		ed.DynamicEndpointConfigs = append(ed.DynamicEndpointConfigs, &adminv3.EndpointsConfigDump_DynamicEndpointConfig{
			VersionInfo: ver(resourcev3.EndpointType), EndpointConfig: mustAny(e)})
	}
	sd := &adminv3.SecretsConfigDump{}
	for _, sec := range out.Secrets {
		sd.DynamicActiveSecrets = append(sd.DynamicActiveSecrets, &adminv3.SecretsConfigDump_DynamicSecret{
			Name: sec.Name, VersionInfo: ver(resourcev3.SecretType), Secret: mustAny(redactSecret(sec))})
	}
	return &adminv3.ConfigDump{Configs: []*anypb.Any{mustAny(ld), mustAny(rd), mustAny(cd), mustAny(ed), mustAny(sd)}}, nil
}

// ForcePush rebuilds every scope from the current snapshot, for
// /debug/adsz?push=true. Versions are content hashes, so proxies are sent
// only what differs from what they hold. It reports false before the first
// push.
func (s *Server) ForcePush() bool {
	s.mu.Lock()
	x := s.index
	s.mu.Unlock()
	if x == nil {
		return false
	}
	s.push(x.Snapshot(), pushInfo{trigger: []string{"debug"}})
	return true
}

// ExplainScope says which scope the proxy proxyID (node ID or pod.namespace)
// has and why it sees what it sees, for /debug/sidecarz.
func (s *Server) ExplainScope(proxyID string) (translate.ScopeExplanation, error) {
	x, scope, err := s.proxyScope(proxyID)
	if err != nil {
		return translate.ScopeExplanation{}, err
	}
	return translate.ExplainScope(x, scope), nil
}

// ErrNotGateway is returned by ExplainGateway for a proxy that is not a
// gateway (router~) proxy.
var ErrNotGateway = errors.New("not a gateway proxy")

// ExplainGateway says which Gateways the gateway proxy proxyID (node ID or
// pod.namespace) gets, and what their servers give it, for
// /debug/gatewayz. It fails with ErrNotGateway for a sidecar or a
// proxyless gRPC client.
func (s *Server) ExplainGateway(proxyID string) (translate.GatewayExplanation, error) {
	x, scope, err := s.proxyScope(proxyID)
	if err != nil {
		return translate.GatewayExplanation{}, err
	}
	if scope.Type != model.Router || scope.Generator == model.GeneratorGRPC {
		return translate.GatewayExplanation{}, fmt.Errorf("proxy %q (scope %s): %w; see /debug/sidecarz", proxyID, scope.Key(), ErrNotGateway)
	}
	return translate.ExplainGateway(x, scope), nil
}

// proxyScope returns the current Index and the scope of the connected
// proxy proxyID (node ID or pod.namespace).
func (s *Server) proxyScope(proxyID string) (*translate.Index, model.Scope, error) {
	for _, p := range s.Proxies() {
		if p.NodeID != proxyID && p.ID != proxyID {
			continue
		}
		s.mu.Lock()
		x, ss := s.index, s.scopes[p.Scope]
		s.mu.Unlock()
		if x == nil || ss == nil {
			return nil, model.Scope{}, fmt.Errorf("proxy %q: no config built yet", proxyID)
		}
		return x, ss.scope, nil
	}
	return nil, model.Scope{}, fmt.Errorf("proxy %q is not connected", proxyID)
}
