package translate

import (
	"fmt"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
)

// routeCtx is what HTTP route translation needs to know about the listener
// and the scope.
type routeCtx struct {
	port      uint32
	namespace string            // the proxy's namespace, for sourceNamespace matches
	labels    map[string]string // the proxy's workload labels, for sourceLabels matches
	// grpc restricts the output to what proxyless gRPC (grpc-go) supports.
	grpc bool
	// gateway is the Gateway ("namespace/name") whose server the routes are
	// built for, "" for sidecars: match conditions listing gateways apply
	// when they name it (gateway names are resolved, gatewayvs.go) rather
	// than "mesh". tls is set when that server has TLS settings (an
	// httpsRedirect server too): redirects with a port default to https,
	// as istiod's ApplyRedirect with RouteOptions.IsTLS.
	gateway string
	tls     bool
}

// defaultRoute sends everything to one cluster, as istiod's "default" route.
func defaultRoute(cluster string) *route.Route {
	return &route.Route{
		Name:  "default",
		Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: cluster},
			Timeout:          durationpb.New(0),
		}},
	}
}

// virtualServiceRoutes translates the HTTP routes of vs for one listener
// port, in order, as istiod's BuildHTTPRoutesForVirtualService: one Envoy
// route per applicable match condition; nothing after a catch-all route.
func (x *Index) virtualServiceRoutes(vs *virtualService, rc routeCtx) []*route.Route {
	var out []*route.Route
	for i, hr := range vs.spec.GetHttp() {
		if rc.grpc && !grpcSupportsRoute(hr) {
			continue
		}
		matches := hr.GetMatch()
		if len(matches) == 0 {
			matches = []*networking.HTTPMatchRequest{nil}
		}
		for _, m := range matches {
			if !matchApplies(m, rc) || (rc.grpc && len(m.GetQueryParams()) > 0) {
				continue
			}
			r := x.translateRoute(vs, i, hr, m, rc)
			out = append(out, r)
			if isCatchAll(r) {
				return out
			}
		}
	}
	return out
}

// routeName is istiod's route name (the HTTPRoute's name, ".<match name>"
// appended); meshd names unnamed routes "<namespace>.<vs>.<index>".
func routeName(vs *virtualService, i int, hr *networking.HTTPRoute, m *networking.HTTPMatchRequest) string {
	name := hr.GetName()
	if name == "" {
		name = fmt.Sprintf("%s.%s.%d", vs.cfg.Namespace, vs.cfg.Name, i)
	}
	if m.GetName() != "" {
		name += "." + m.GetName()
	}
	return name
}

// translateRoute builds the Envoy route of one HTTPRoute and match condition.
func (x *Index) translateRoute(vs *virtualService, i int, hr *networking.HTTPRoute, m *networking.HTTPMatchRequest, rc routeCtx) *route.Route {
	r := &route.Route{Name: routeName(vs, i, hr, m), Match: translateMatch(m)}
	authority := ""
	if !rc.grpc {
		r.StatPrefix = m.GetStatPrefix()
		authority = applyHeaderOps(r, hr.GetHeaders())
	}
	switch {
	case hr.GetRedirect() != nil:
		r.Action = redirectAction(hr.GetRedirect(), rc.port, rc.tls)
	case hr.GetDirectResponse() != nil:
		r.Action = directResponseAction(hr.GetDirectResponse())
	default:
		r.Action = &route.Route_Route{Route: x.routeAction(vs, hr, r, authority, rc)}
	}
	if !rc.grpc {
		r.Decorator = &route.Decorator{Operation: routeOperation(r, vs.cfg.Name, rc.port)}
	}
	filters := map[string]*anypb.Any{}
	if f := translateFault(hr.GetFault()); f != nil {
		filters[faultFilterName] = mustAny(f)
	}
	if c := hr.GetCorsPolicy(); c != nil && !rc.grpc {
		filters[corsFilterName] = mustAny(translateCors(c))
	}
	if len(filters) > 0 {
		r.TypedPerFilterConfig = filters
	}
	return r
}

// routeAction builds the forwarding action of an HTTP route: weighted
// destinations, timeout, retries and (for Envoy) rewrite and mirrors.
func (x *Index) routeAction(vs *virtualService, hr *networking.HTTPRoute, r *route.Route, authority string, rc routeCtx) *route.RouteAction {
	ra := &route.RouteAction{}
	setTimeout(ra, hr.GetTimeout(), rc.grpc)
	if !rc.grpc {
		authority = applyRewrite(ra, hr.GetRewrite(), authority)
		if authority != "" {
			ra.HostRewriteSpecifier = &route.RouteAction_HostRewriteLiteral{HostRewriteLiteral: authority}
		}
		ra.RequestMirrorPolicies = x.mirrorPolicies(vs, hr, rc.port)
	}
	dests := hr.GetRoute()
	if len(dests) == 1 {
		ra.ClusterSpecifier = &route.RouteAction_Cluster{
			Cluster: x.destinationCluster(vs.cfg.Namespace, dests[0].GetDestination(), rc.port),
		}
		if !rc.grpc {
			applyDestinationHeaders(r, ra, dests[0].GetHeaders())
		}
	} else {
		wc := &route.WeightedCluster{}
		for _, d := range dests {
			if d.GetWeight() == 0 {
				continue
			}
			cw := &route.WeightedCluster_ClusterWeight{
				Name:   x.destinationCluster(vs.cfg.Namespace, d.GetDestination(), rc.port),
				Weight: wrapperspb.UInt32(uint32(d.GetWeight())),
			}
			if !rc.grpc {
				applyClusterWeightHeaders(cw, d.GetHeaders())
			}
			wc.Clusters = append(wc.Clusters, cw)
		}
		ra.ClusterSpecifier = &route.RouteAction_WeightedClusters{WeightedClusters: wc}
	}
	if rc.grpc {
		ra.RetryPolicy = grpcRetryPolicy(hr.GetRetries())
	} else {
		ra.RetryPolicy = retryPolicy(hr.GetRetries())
	}
	return ra
}

// setTimeout applies a VirtualService timeout as istiod's setTimeout: no
// timeout by default; Envoy also bounds gRPC's grpc-timeout header by it,
// proxyless gRPC reads it from max_stream_duration (only set when positive,
// since grpc-go would take 0 as "no deadline" anyway).
func setTimeout(ra *route.RouteAction, t *durationpb.Duration, grpc bool) {
	ra.Timeout = durationpb.New(0)
	if t != nil {
		ra.Timeout = durationpb.New(t.AsDuration())
	}
	if grpc {
		if t.AsDuration() > 0 {
			ra.MaxStreamDuration = &route.RouteAction_MaxStreamDuration{MaxStreamDuration: durationpb.New(t.AsDuration())}
		}
		return
	}
	//nolint:staticcheck // istiod still sets the deprecated field; Envoy honours it.
	ra.MaxGrpcTimeout = durationpb.New(ra.Timeout.AsDuration())
}

// routeOperation is istiod's tracing operation name of a route: host:port
// and path of its single destination, else <vs name>:port and path.
func routeOperation(r *route.Route, vsName string, port uint32) string {
	path := "/*"
	switch p := r.GetMatch().GetPathSpecifier().(type) {
	case *route.RouteMatch_Prefix:
		path = p.Prefix + "*"
	case *route.RouteMatch_Path:
		path = p.Path
	case *route.RouteMatch_SafeRegex:
		path = p.SafeRegex.GetRegex()
	}
	if cp, _, host, ok := ParseClusterName(r.GetRoute().GetCluster()); ok {
		return fmt.Sprintf("%s:%d%s", host, cp, path)
	}
	return fmt.Sprintf("%s:%d%s", vsName, port, path)
}
