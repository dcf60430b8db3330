package translate

import (
	"fmt"
	"maps"
	"slices"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
)

// routeCtx is what HTTP route translation needs to know about the listener.
type routeCtx struct {
	port      uint32
	namespace string // the proxy's namespace, for sourceNamespace matches
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

// virtualServiceRoutes translates the HTTP routes of vs for one listener port.
// Routes whose every match is for another port or namespace are left out.
func (x *Index) virtualServiceRoutes(vs *virtualService, rc routeCtx) []*route.Route {
	var out []*route.Route
	for i, hr := range vs.spec.GetHttp() {
		action := x.routeAction(vs, hr, rc)
		name := hr.GetName()
		if name == "" {
			name = fmt.Sprintf("%s.%s.%d", vs.cfg.Namespace, vs.cfg.Name, i)
		}
		if len(hr.GetMatch()) == 0 {
			out = append(out, &route.Route{Name: name, Match: prefixMatch("/"), Action: action})
			continue
		}
		for _, m := range hr.GetMatch() {
			rm, ok := translateMatch(m, rc)
			if !ok {
				continue
			}
			out = append(out, &route.Route{Name: name, Match: rm, Action: action})
		}
	}
	return out
}

func prefixMatch(p string) *route.RouteMatch {
	return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: p}}
}

// routeAction builds the weighted-cluster action of an HTTP route.
func (x *Index) routeAction(vs *virtualService, hr *networking.HTTPRoute, rc routeCtx) *route.Route_Route {
	ra := &route.RouteAction{Timeout: durationpb.New(0)}
	if t := hr.GetTimeout(); t != nil {
		ra.Timeout = durationpb.New(t.AsDuration())
	}
	var weighted []*route.WeightedCluster_ClusterWeight
	for _, d := range hr.GetRoute() {
		w := uint32(d.GetWeight())
		if len(hr.GetRoute()) == 1 {
			w = 100
		}
		if w == 0 {
			continue
		}
		weighted = append(weighted, &route.WeightedCluster_ClusterWeight{
			Name:   x.destinationCluster(vs.cfg.Namespace, d.GetDestination(), rc.port),
			Weight: wrapperspb.UInt32(w),
		})
	}
	if len(weighted) == 1 {
		ra.ClusterSpecifier = &route.RouteAction_Cluster{Cluster: weighted[0].Name}
	} else {
		ra.ClusterSpecifier = &route.RouteAction_WeightedClusters{WeightedClusters: &route.WeightedCluster{Clusters: weighted}}
	}
	return &route.Route_Route{Route: ra}
}

// translateMatch converts one HTTPMatchRequest. ok is false when the match can
// never apply on this listener (another port or source namespace), or relies
// on source labels, which meshd does not yet scope by.
func translateMatch(m *networking.HTTPMatchRequest, rc routeCtx) (*route.RouteMatch, bool) {
	if m.GetPort() != 0 && m.GetPort() != rc.port {
		return nil, false
	}
	if ns := m.GetSourceNamespace(); ns != "" && ns != rc.namespace {
		return nil, false
	}
	if len(m.GetSourceLabels()) > 0 {
		return nil, false
	}
	rm := prefixMatch("/")
	switch u := m.GetUri().GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		rm.PathSpecifier = &route.RouteMatch_Path{Path: u.Exact}
	case *networking.StringMatch_Prefix:
		rm.PathSpecifier = &route.RouteMatch_Prefix{Prefix: u.Prefix}
	case *networking.StringMatch_Regex:
		rm.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: regexMatcher(u.Regex)}
	}
	if m.GetIgnoreUriCase() {
		rm.CaseSensitive = wrapperspb.Bool(false)
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetHeaders())) {
		rm.Headers = append(rm.Headers, headerMatcher(name, m.GetHeaders()[name], false))
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetWithoutHeaders())) {
		rm.Headers = append(rm.Headers, headerMatcher(name, m.GetWithoutHeaders()[name], true))
	}
	pseudo := []struct {
		name string
		sm   *networking.StringMatch
	}{{":method", m.GetMethod()}, {":scheme", m.GetScheme()}, {":authority", m.GetAuthority()}}
	for _, p := range pseudo {
		if p.sm != nil {
			rm.Headers = append(rm.Headers, headerMatcher(p.name, p.sm, false))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetQueryParams())) {
		if sm := stringMatcher(m.GetQueryParams()[name]); sm != nil {
			rm.QueryParameters = append(rm.QueryParameters, &route.QueryParameterMatcher{
				Name: name, QueryParameterMatchSpecifier: &route.QueryParameterMatcher_StringMatch{StringMatch: sm},
			})
		}
	}
	return rm, true
}

func headerMatcher(name string, sm *networking.StringMatch, invert bool) *route.HeaderMatcher {
	hm := &route.HeaderMatcher{Name: name, InvertMatch: invert}
	if s := stringMatcher(sm); s != nil {
		hm.HeaderMatchSpecifier = &route.HeaderMatcher_StringMatch{StringMatch: s}
	} else {
		hm.HeaderMatchSpecifier = &route.HeaderMatcher_PresentMatch{PresentMatch: true}
	}
	return hm
}

// stringMatcher converts an Istio StringMatch; nil for an empty match.
func stringMatcher(sm *networking.StringMatch) *matcher.StringMatcher {
	switch v := sm.GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: v.Exact}}
	case *networking.StringMatch_Prefix:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: v.Prefix}}
	case *networking.StringMatch_Regex:
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: regexMatcher(v.Regex)}}
	}
	return nil
}

func regexMatcher(re string) *matcher.RegexMatcher {
	return &matcher.RegexMatcher{Regex: re}
}
