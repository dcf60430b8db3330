package envoygolden

import (
	"fmt"
	"sort"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Names of the resources the suite adds; "envoygolden" never occurs in
// meshd's own names.
const (
	apiListenerPrefix   = "envoygolden-api|"
	routeListenerPrefix = "envoygolden-rds|"
	edsClusterPrefix    = "envoygolden-eds|"
)

// Plan is what one Envoy receives for a case: the golden resources, changed
// only as the package comment says, and test secrets.
type Plan struct {
	// Case is the golden case's name.
	Case string
	// NodeID is the Envoy's node ID, e.g.
	// sidecar~10.250.0.9~plain-service.shop~shop.svc.cluster.local.
	NodeID    string
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
	Clusters  []*cluster.Cluster
	Endpoints []*endpoint.ClusterLoadAssignment
	Secrets   []*tlsv3.Secret
	// Notes say what the plan changed from the golden and why, for the log.
	Notes []string
}

// NewPlan builds the plan for c; port returns a port no one else uses, dir
// is a directory for the test TLS files (see rewriteFiles).
func NewPlan(c *Case, port func() int, dir string) (*Plan, error) {
	ns := c.Scope.Namespace
	p := &Plan{
		Case:      c.Name,
		NodeID:    fmt.Sprintf("%s~10.250.0.9~%s.%s~%s.svc.cluster.local", c.Scope.Type, c.Name, ns, ns),
		Routes:    cloneAll(c.Routes),
		Clusters:  cloneAll(c.Clusters),
		Endpoints: cloneAll(c.Endpoints),
	}
	if err := p.addListeners(cloneAll(c.Listeners), port); err != nil {
		return nil, err
	}
	if err := p.addRouteListeners(port); err != nil {
		return nil, err
	}
	p.addEDSClusters()
	if err := p.addTLS(ns, dir); err != nil {
		return nil, err
	}
	return p, nil
}

// addTLS gives Envoy what the resources' TLS settings need from a pod: the
// SDS secrets they name, and the files they name.
func (p *Plan) addTLS(ns, dir string) error {
	k := newPKI(ns)
	files := map[string]string{}
	notes, err := rewriteFiles(k, dir, p.Clusters, files)
	if err != nil {
		return err
	}
	p.Notes = append(p.Notes, notes...)
	if notes, err = rewriteFiles(k, dir, p.Listeners, files); err != nil {
		return err
	}
	p.Notes = append(p.Notes, notes...)
	var all []proto.Message
	for _, c := range p.Clusters {
		all = append(all, c)
	}
	for _, l := range p.Listeners {
		all = append(all, l)
	}
	p.Secrets, err = testSecrets(k, all)
	return err
}

// addListeners adds the case's listeners: API listeners become synthetic
// listeners carrying their HttpConnectionManager, listeners that bind get a
// free port.
func (p *Plan) addListeners(ls []*listener.Listener, port func() int) error {
	ports := map[uint32]uint32{} // golden port -> this Envoy's port
	for _, l := range ls {
		if l.GetApiListener() != nil {
			m := &hcm.HttpConnectionManager{}
			if err := l.GetApiListener().GetApiListener().UnmarshalTo(m); err != nil {
				return fmt.Errorf("listener %s: api_listener: %w", l.GetName(), err)
			}
			p.Listeners = append(p.Listeners, hcmListener(apiListenerPrefix+l.GetName(), port(), m))
			p.Notes = append(p.Notes, fmt.Sprintf("API listener %s (proxyless gRPC) not sent: Envoy's LDS does not take API listeners, grpc-go verifies them (make e2e-file); its HttpConnectionManager goes in listener %s", l.GetName(), apiListenerPrefix+l.GetName()))
			continue
		}
		if binds(l) {
			for _, sa := range socketAddresses(l) {
				old := sa.GetPortValue()
				if ports[old] == 0 {
					ports[old] = uint32(port())
					p.Notes = append(p.Notes, fmt.Sprintf("listener %s binds port %d: Envoy gets free port %d instead (parallel Envoys share this network namespace; port numbers are not what is validated)", l.GetName(), old, ports[old]))
				}
				sa.PortSpecifier = &core.SocketAddress_PortValue{PortValue: ports[old]}
			}
		}
		p.Listeners = append(p.Listeners, l)
	}
	return nil
}

// addRouteListeners adds a listener for every route config no listener
// references: Envoy asks RDS only for the route configs its listeners name.
func (p *Plan) addRouteListeners(port func() int) error {
	referenced := map[string]bool{}
	for _, l := range p.Listeners {
		ms, err := hcms(l)
		if err != nil {
			return err
		}
		for _, m := range ms {
			if n := m.GetRds().GetRouteConfigName(); n != "" {
				referenced[n] = true
			}
		}
	}
	for _, r := range p.Routes {
		if referenced[r.GetName()] {
			continue
		}
		m := &hcm.HttpConnectionManager{
			StatPrefix:     "envoygolden_rds",
			HttpFilters:    []*hcm.HttpFilter{{Name: "envoy.filters.http.router", ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&router.Router{})}}},
			RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{ConfigSource: adsSource(), RouteConfigName: r.GetName()}},
		}
		p.Listeners = append(p.Listeners, hcmListener(routeListenerPrefix+r.GetName(), port(), m))
		p.Notes = append(p.Notes, fmt.Sprintf("route config %q: no listener sent to Envoy references it; listener %s does, so Envoy loads it", r.GetName(), routeListenerPrefix+r.GetName()))
	}
	return nil
}

// addEDSClusters adds an EDS cluster for every ClusterLoadAssignment no EDS
// cluster names: Envoy asks EDS only for its EDS clusters' service names.
func (p *Plan) addEDSClusters() {
	named := map[string]bool{}
	for _, c := range p.Clusters {
		if name := EDSName(c); name != "" {
			named[name] = true
		}
	}
	for _, cla := range p.Endpoints {
		if named[cla.GetClusterName()] {
			continue
		}
		p.Clusters = append(p.Clusters, &cluster.Cluster{
			Name:                 edsClusterPrefix + cla.GetClusterName(),
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			ConnectTimeout:       durationpb.New(time.Second),
			EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: adsSource(), ServiceName: cla.GetClusterName()},
		})
		p.Notes = append(p.Notes, fmt.Sprintf("endpoints %q: no EDS cluster names them; cluster %s does, so Envoy loads them", cla.GetClusterName(), edsClusterPrefix+cla.GetClusterName()))
	}
}

// EDSName is the ClusterLoadAssignment an EDS cluster asks for, "" for
// clusters of other types.
func EDSName(c *cluster.Cluster) string {
	if c.GetType() != cluster.Cluster_EDS {
		return ""
	}
	if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
		return n
	}
	return c.GetName()
}

// binds reports whether Envoy would bind the listener's address.
func binds(l *listener.Listener) bool {
	return l.GetBindToPort() == nil || l.GetBindToPort().GetValue()
}

// socketAddresses returns the listener's socket addresses, main and
// additional, for rewriting.
func socketAddresses(l *listener.Listener) []*core.SocketAddress {
	var out []*core.SocketAddress
	if sa := l.GetAddress().GetSocketAddress(); sa != nil {
		out = append(out, sa)
	}
	for _, a := range l.GetAdditionalAddresses() {
		if sa := a.GetAddress().GetSocketAddress(); sa != nil {
			out = append(out, sa)
		}
	}
	return out
}

// hcms returns the HttpConnectionManagers of a listener's filter chains.
func hcms(l *listener.Listener) ([]*hcm.HttpConnectionManager, error) {
	chains := l.GetFilterChains()
	if l.GetDefaultFilterChain() != nil {
		chains = append(chains[:len(chains):len(chains)], l.GetDefaultFilterChain())
	}
	var out []*hcm.HttpConnectionManager
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			tc := f.GetTypedConfig()
			if tc == nil || !tc.MessageIs(&hcm.HttpConnectionManager{}) {
				continue
			}
			m := &hcm.HttpConnectionManager{}
			if err := tc.UnmarshalTo(m); err != nil {
				return nil, fmt.Errorf("listener %s: %w", l.GetName(), err)
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// hcmListener is a listener that does not bind, on 127.0.0.1:port, whose
// one filter chain is m.
func hcmListener(name string, port int, m *hcm.HttpConnectionManager) *listener.Listener {
	return &listener.Listener{
		Name: name,
		Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: uint32(port)},
		}}},
		BindToPort: wrapperspb.Bool(false),
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(m)},
		}}}},
	}
}

func adsSource() *core.ConfigSource {
	return &core.ConfigSource{
		ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		ResourceApiVersion:    core.ApiVersion_V3,
	}
}

func mustAny(m proto.Message) *anypb.Any {
	a, err := anypb.New(m)
	if err != nil {
		panic(err)
	}
	return a
}

func cloneAll[M proto.Message](in []M) []M {
	out := make([]M, 0, len(in))
	for _, m := range in {
		out = append(out, proto.Clone(m).(M))
	}
	return out
}

// Names returns the plan's resource names by kind ("listeners", "routes",
// "clusters", "endpoints"), sorted.
func (p *Plan) Names() map[string][]string {
	out := map[string][]string{}
	for _, l := range p.Listeners {
		out["listeners"] = append(out["listeners"], l.GetName())
	}
	for _, r := range p.Routes {
		out["routes"] = append(out["routes"], r.GetName())
	}
	for _, c := range p.Clusters {
		out["clusters"] = append(out["clusters"], c.GetName())
	}
	for _, e := range p.Endpoints {
		out["endpoints"] = append(out["endpoints"], e.GetClusterName())
	}
	for _, v := range out {
		sort.Strings(v)
	}
	return out
}
