package translate

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	accesslog "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	grpclog "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extauthztcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/ext_authz/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshd/meshd/internal/protoutil"
)

type validator interface{ ValidateAll() error }

// validateMessage runs protoc-gen-validate's ValidateAll on m. It does not
// look inside Any fields; Validate unpacks the ones meshd emits.
func validateMessage(m proto.Message) error {
	v, ok := m.(validator)
	if !ok {
		return fmt.Errorf("%s has no ValidateAll", m.ProtoReflect().Descriptor().FullName())
	}
	return v.ValidateAll()
}

func validateAny(a *anypb.Any) (proto.Message, error) {
	m, err := a.UnmarshalNew()
	if err != nil {
		return nil, fmt.Errorf("unpacking %s: %w", a.GetTypeUrl(), err)
	}
	return m, validateMessage(m)
}

// Validate checks every resource of out with ValidateAll (including the
// typed configs of listener filters, HTTP filters, listener transport
// sockets and cluster protocol options) and then checks referential
// integrity. It returns every problem found, each naming the resource.
func Validate(out *Output) error { return validate(out, nil) }

// ValidateIn is Validate for an Output that Build made from x: a resource
// shared by the Outputs of several scopes is checked once per Index.
// Scopes share Outputs, so a whole Output is checked once per Index too.
func ValidateIn(x *Index, out *Output) error {
	return x.checked.check(validatedOutput{out}, func() error {
		if out.shared != nil {
			return validateSplit(x, out)
		}
		return validate(out, &x.checked)
	})
}

// validatedOutput keys a whole Output's result in the Index's memo.
type validatedOutput struct{ out *Output }

func validate(out *Output, m *memo) error {
	errs := checkResources(out, m, true)
	errs = append(errs, checkReferences(out, m)...)
	return errors.Join(errs...)
}

// checkResources validates each listener, route, cluster and secret of out
// (and assignment, with endpoints), each resource value once per memo.
func checkResources(out *Output, m *memo, endpoints bool) []error {
	var errs []error
	fail := func(kind, name string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", kind, name, err))
		}
	}
	for _, l := range out.Listeners {
		fail("listener", l.Name, m.check(l, func() error {
			return errors.Join(validateMessage(l), validateListenerConfigs(l))
		}))
	}
	for _, r := range out.Routes {
		fail("route", r.Name, m.check(r, func() error { return validateRouteConfiguration(r, m) }))
	}
	for _, c := range out.Clusters {
		fail("cluster", c.Name, m.check(c, func() error { return validateCluster(c) }))
	}
	if endpoints {
		for _, e := range out.Endpoints {
			fail("endpoints", e.ClusterName, m.check(e, func() error { return validateMessage(e) }))
		}
	}
	for i, sec := range out.Secrets {
		fail("secret", sec.Name, m.check(sec, func() error { return validateMessage(sec) }))
		if i > 0 && out.Secrets[i-1].Name == sec.Name {
			errs = append(errs, fmt.Errorf("secret %q: in the output twice", sec.Name))
		}
	}
	return errs
}

// virtualHostsField is RouteConfiguration.virtual_hosts.
const virtualHostsField = 2

// validateRouteConfiguration is ValidateAll on rc and the typed configs
// inside it, with each virtual host checked once per memo: the route
// configurations of several views share most of their virtual hosts
// (share.go). Errors read as protoc-gen-validate's.
func validateRouteConfiguration(rc *route.RouteConfiguration, m *memo) error {
	var msgs []string
	if err := validateMessage(protoutil.Without(rc, virtualHostsField)); err != nil {
		msgs = append(msgs, err.Error())
	}
	for i, vh := range rc.GetVirtualHosts() {
		err := m.check(vh, func() error {
			if err := validateMessage(vh); err != nil {
				return fmt.Errorf("embedded message failed validation | caused by: %w", err)
			}
			return validateVirtualHostConfigs(vh)
		})
		if err != nil {
			msgs = append(msgs, fmt.Sprintf("invalid RouteConfiguration.VirtualHosts[%d]: %v", i, err))
		}
	}
	if err := uniqueDomains(rc); err != nil {
		msgs = append(msgs, err.Error())
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

// memo remembers, per resource value, the result of its checks and the
// references it makes; nil remembers nothing. A value carried from Index
// to Index keeps its result with it (carried, when set, finds it).
type memo struct {
	errs, refs sync.Map
	carried    func(v any) *carried
}

type checked struct{ err error }

func (m *memo) check(key any, f func() error) error {
	if m == nil {
		return f()
	}
	if v, ok := m.errs.Load(key); ok {
		return v.(checked).err
	}
	var e *carried
	if m.carried != nil {
		e = m.carried(key)
	}
	if e != nil {
		if c := e.checked.Load(); c != nil {
			m.errs.Store(key, *c)
			return c.err
		}
	}
	err := f()
	m.errs.Store(key, checked{err})
	if e != nil {
		e.checked.Store(&checked{err})
	}
	return err
}

func (m *memo) listenerRefs(l *listener.Listener) []ref {
	if m == nil {
		return listenerRefs(l)
	}
	if v, ok := m.refs.Load(l); ok {
		return v.([]ref)
	}
	r := listenerRefs(l)
	m.refs.Store(l, r)
	return r
}

func (m *memo) routeRefs(rc *route.RouteConfiguration) []string {
	if m == nil {
		return referencedClusters([]*route.RouteConfiguration{rc})
	}
	if v, ok := m.refs.Load(rc); ok {
		return v.([]string)
	}
	r := referencedClusters([]*route.RouteConfiguration{rc})
	m.refs.Store(rc, r)
	return r
}

// listenerConfigs returns the typed configs of a listener's filters and
// filter chains' transport sockets (and of its API listener).
func listenerConfigs(l *listener.Listener) []*anypb.Any {
	var anys []*anypb.Any
	if a := l.GetApiListener().GetApiListener(); a != nil {
		anys = append(anys, a)
	}
	for _, lf := range l.GetListenerFilters() {
		anys = append(anys, lf.GetTypedConfig())
	}
	chains := l.GetFilterChains()
	if dc := l.GetDefaultFilterChain(); dc != nil {
		chains = append(slices.Clip(chains), dc)
	}
	for _, fc := range chains {
		for _, f := range fc.GetFilters() {
			anys = append(anys, f.GetTypedConfig())
		}
		if ts := fc.GetTransportSocket().GetTypedConfig(); ts != nil {
			anys = append(anys, ts)
		}
	}
	return anys
}

func validateListenerConfigs(l *listener.Listener) error {
	for _, a := range listenerConfigs(l) {
		m, err := validateAny(a)
		if err != nil {
			return err
		}
		var logs []*accesslog.AccessLog
		switch f := m.(type) {
		case *hcm.HttpConnectionManager:
			if err := routerLast(f); err != nil {
				return err
			}
			for _, hf := range f.GetHttpFilters() {
				if _, err := validateAny(hf.GetTypedConfig()); err != nil {
					return fmt.Errorf("http filter %s: %w", hf.GetName(), err)
				}
			}
			logs = f.GetAccessLog()
		case *tcp.TcpProxy:
			logs = f.GetAccessLog()
		}
		for _, al := range logs {
			if _, err := validateAny(al.GetTypedConfig()); err != nil {
				return fmt.Errorf("access log %s: %w", al.GetName(), err)
			}
		}
	}
	return nil
}

// CheckReferences verifies that every route a listener names, every cluster a
// listener or route names, every secret a listener fetches over ADS, and
// every EDS cluster's endpoints are present in out. meshd never serves a
// snapshot that fails this check.
func CheckReferences(out *Output) []error { return checkReferences(out, nil) }

func checkReferences(out *Output, m *memo) []error {
	routes := newNameSet(out.Routes, (*route.RouteConfiguration).GetName)
	clusters := newNameSet(out.Clusters, (*cluster.Cluster).GetName)
	cla := newNameSet(out.Endpoints, (*endpoint.ClusterLoadAssignment).GetClusterName)
	secrets := newNameSet(out.Secrets, (*tlsv3.Secret).GetName)
	var errs []error
	for _, l := range out.Listeners {
		for _, ref := range m.listenerRefs(l) {
			errs = append(errs, ref.missing(l.Name, routes.has, clusters.has, secrets.has)...)
		}
	}
	if checkClusterSecrets {
		errs = append(errs, clusterSecretErrors(out.Clusters, secrets.has)...)
	}
	for _, r := range out.Routes {
		for _, c := range m.routeRefs(r) {
			if !clusters.has(c) {
				errs = append(errs, fmt.Errorf("route %q references missing cluster %q", r.Name, c))
			}
		}
	}
	for _, c := range out.Clusters {
		if c.GetType() == cluster.Cluster_EDS && !cla.has(edsName(c)) {
			errs = append(errs, fmt.Errorf("EDS cluster %q has no ClusterLoadAssignment", c.Name))
		}
	}
	return errs
}

// nameSet answers whether a name is one of a list's: by binary search when
// the list is sorted by name (Build's Outputs are), else through a map.
type nameSet struct {
	sorted []string
	m      map[string]bool
}

func newNameSet[T any](items []T, name func(T) string) nameSet {
	names := make([]string, len(items))
	for i, it := range items {
		names[i] = name(it)
	}
	if slices.IsSorted(names) {
		return nameSet{sorted: names}
	}
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return nameSet{m: m}
}

func (s nameSet) has(n string) bool {
	if s.m != nil {
		return s.m[n]
	}
	_, ok := slices.BinarySearch(s.sorted, n)
	return ok
}

func edsName(c *cluster.Cluster) string {
	if n := c.GetEdsClusterConfig().GetServiceName(); n != "" {
		return n
	}
	return c.Name
}

// ref is one name a listener makes: a route, a cluster or an SDS secret
// fetched over ADS (one of the three is set).
type ref struct{ route, cluster, secret string }

// missing reports ref when it names what the has functions do not know,
// for listener l.
func (r ref) missing(l string, hasRoute, hasCluster, hasSecret func(string) bool) []error {
	switch {
	case r.route != "" && !hasRoute(r.route):
		return []error{fmt.Errorf("listener %q references missing route %q", l, r.route)}
	case r.cluster != "" && !hasCluster(r.cluster):
		return []error{fmt.Errorf("listener %q references missing cluster %q", l, r.cluster)}
	case r.secret != "" && !hasSecret(r.secret):
		return []error{fmt.Errorf("listener %q references missing secret %q (SDS over ADS)", l, r.secret)}
	}
	return nil
}

// listenerRefs lists the routes and clusters a listener's filters name,
// and the secrets its transport sockets fetch over ADS.
func listenerRefs(l *listener.Listener) []ref {
	var out []ref
	for _, a := range listenerConfigs(l) {
		m, err := a.UnmarshalNew()
		if err != nil {
			continue
		}
		switch f := m.(type) {
		case *tlsv3.DownstreamTlsContext:
			for _, name := range downstreamSecretRefs(f) {
				out = append(out, ref{secret: name})
			}
		case *hcm.HttpConnectionManager:
			out = append(out, accessLogRefs(f.GetAccessLog())...)
			out = append(out, extAuthzRefs(f.GetHttpFilters())...)
			if rc := f.GetRouteConfig(); rc != nil {
				for _, c := range referencedClusters([]*route.RouteConfiguration{rc}) {
					out = append(out, ref{cluster: c})
				}
				continue
			}
			out = append(out, ref{route: f.GetRds().GetRouteConfigName()})
		case *extauthztcp.ExtAuthz:
			out = append(out, ref{cluster: f.GetGrpcService().GetEnvoyGrpc().GetClusterName()})
		case *tcp.TcpProxy:
			out = append(out, accessLogRefs(f.GetAccessLog())...)
			if c := f.GetCluster(); c != "" {
				out = append(out, ref{cluster: c})
			}
			for _, wc := range f.GetWeightedClusters().GetClusters() {
				out = append(out, ref{cluster: wc.GetName()})
			}
		}
	}
	return out
}

// extAuthzRefs lists the clusters the ext_authz filters among filters
// call (an authorization service's cluster must be served with them).
func extAuthzRefs(filters []*hcm.HttpFilter) []ref {
	var out []ref
	for _, f := range filters {
		c := &extauthzhttp.ExtAuthz{}
		if !f.GetTypedConfig().MessageIs(c) || f.GetTypedConfig().UnmarshalTo(c) != nil {
			continue
		}
		if name := c.GetHttpService().GetServerUri().GetCluster(); name != "" {
			out = append(out, ref{cluster: name})
		}
		if name := c.GetGrpcService().GetEnvoyGrpc().GetClusterName(); name != "" {
			out = append(out, ref{cluster: name})
		}
	}
	return out
}

// accessLogRefs lists the collector clusters of gRPC access loggers.
func accessLogRefs(logs []*accesslog.AccessLog) []ref {
	var out []ref
	for _, l := range logs {
		m, err := l.GetTypedConfig().UnmarshalNew()
		if err != nil {
			continue
		}
		var common *grpclog.CommonGrpcAccessLogConfig
		switch c := m.(type) {
		case *grpclog.HttpGrpcAccessLogConfig:
			common = c.GetCommonConfig()
		case *grpclog.TcpGrpcAccessLogConfig:
			common = c.GetCommonConfig()
		}
		if name := common.GetGrpcService().GetEnvoyGrpc().GetClusterName(); name != "" {
			out = append(out, ref{cluster: name})
		}
	}
	return out
}

// uniqueDomains is Envoy's check that ValidateAll lacks: a domain may
// appear once in a route configuration, across all its virtual hosts
// (Envoy rejects the whole configuration: "Only unique values for domains
// are permitted").
func uniqueDomains(rc *route.RouteConfiguration) error {
	n := 0
	for _, vh := range rc.GetVirtualHosts() {
		n += len(vh.GetDomains())
	}
	seen := make(map[string]string, n)
	for _, vh := range rc.GetVirtualHosts() {
		for _, d := range vh.GetDomains() {
			d = strings.ToLower(d)
			if other, ok := seen[d]; ok {
				return fmt.Errorf("domain %q is in virtual hosts %q and %q (Envoy permits each domain once per route configuration)", d, other, vh.GetName())
			}
			seen[d] = vh.GetName()
		}
	}
	return nil
}

// routerLast is Envoy's check that ValidateAll lacks: the router (the
// terminal HTTP filter of every connection manager meshd emits) must be the last HTTP filter, and only there.
func routerLast(m *hcm.HttpConnectionManager) error {
	fs := m.GetHttpFilters()
	for i, f := range fs {
		if (f.GetName() == routerFilterName) != (i == len(fs)-1) {
			return fmt.Errorf("http filters: %s must be the last and only terminal filter (found %q at %d of %d)", routerFilterName, f.GetName(), i, len(fs))
		}
	}
	return nil
}
