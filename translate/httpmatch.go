package translate

import (
	"maps"
	"slices"
	"sort"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
)

// meshGateway is the gateway name that binds a VirtualService to sidecars.
const meshGateway = "mesh"

// matchApplies reports whether an HTTP match condition can apply to the
// scope on this listener port, as istiod's sourceMatchHTTP: a match for
// another port never applies; a match listing gateways applies only if
// "mesh" is among them (for a gateway's routes: the gateway's name);
// otherwise its sourceLabels must be a subset of the workload's labels and
// its sourceNamespace, if set, the proxy's namespace.
func matchApplies(m *networking.HTTPMatchRequest, rc routeCtx) bool {
	if m == nil {
		return true
	}
	if m.GetPort() != 0 && m.GetPort() != rc.port {
		return false
	}
	if len(m.GetGateways()) > 0 {
		if rc.gateway != "" {
			return slices.Contains(m.GetGateways(), rc.gateway)
		}
		return slices.Contains(m.GetGateways(), meshGateway)
	}
	return sourceApplies(m.GetSourceLabels(), m.GetSourceNamespace(), rc)
}

// sourceApplies checks sourceLabels and sourceNamespace against the scope.
func sourceApplies(labels map[string]string, namespace string, rc routeCtx) bool {
	for k, v := range labels {
		if got, ok := rc.labels[k]; !ok || got != v {
			return false
		}
	}
	return namespace == "" || namespace == rc.namespace
}

// translateMatch converts one HTTPMatchRequest (nil: match everything) the
// way istiod's TranslateRouteMatch does: header and withoutHeaders matchers
// sorted by name, then :method, :authority and :scheme, then query
// parameters (sorted by name, which istiod leaves to map order).
func translateMatch(m *networking.HTTPMatchRequest) *route.RouteMatch {
	rm := prefixMatch("/")
	if m == nil {
		return rm
	}
	for name, sm := range m.GetHeaders() {
		rm.Headers = append(rm.Headers, headerMatcher(name, sm))
	}
	for name, sm := range m.GetWithoutHeaders() {
		hm := headerMatcher(name, sm)
		hm.InvertMatch = true
		if !isPresentMatch(sm) {
			hm.TreatMissingHeaderAsEmpty = true
		}
		rm.Headers = append(rm.Headers, hm)
	}
	sort.SliceStable(rm.Headers, func(i, j int) bool { return rm.Headers[i].Name < rm.Headers[j].Name })
	switch u := m.GetUri().GetMatchType().(type) {
	case *networking.StringMatch_Exact:
		rm.PathSpecifier = &route.RouteMatch_Path{Path: u.Exact}
	case *networking.StringMatch_Prefix:
		rm.PathSpecifier = &route.RouteMatch_Prefix{Prefix: u.Prefix}
	case *networking.StringMatch_Regex:
		rm.PathSpecifier = &route.RouteMatch_SafeRegex{SafeRegex: regexMatcher(u.Regex)}
	}
	rm.CaseSensitive = wrapperspb.Bool(!m.GetIgnoreUriCase())
	pseudo := []struct {
		name string
		sm   *networking.StringMatch
	}{{":method", m.GetMethod()}, {":authority", m.GetAuthority()}, {":scheme", m.GetScheme()}}
	for _, p := range pseudo {
		if p.sm != nil {
			rm.Headers = append(rm.Headers, headerMatcher(p.name, p.sm))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(m.GetQueryParams())) {
		sm := m.GetQueryParams()[name]
		qm := &route.QueryParameterMatcher{Name: name}
		if s := stringMatcher(sm); s != nil && !isPresentMatch(sm) {
			qm.QueryParameterMatchSpecifier = &route.QueryParameterMatcher_StringMatch{StringMatch: s}
		} else {
			qm.QueryParameterMatchSpecifier = &route.QueryParameterMatcher_PresentMatch{PresentMatch: true}
		}
		rm.QueryParameters = append(rm.QueryParameters, qm)
	}
	return rm
}

func prefixMatch(p string) *route.RouteMatch {
	return &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: p}}
}

// isPresentMatch reports whether a StringMatch means "the header is present":
// empty, or the regex "*" (not valid RE2; istiod gives it this meaning).
func isPresentMatch(sm *networking.StringMatch) bool {
	if sm.GetMatchType() == nil {
		return true
	}
	re, ok := sm.GetMatchType().(*networking.StringMatch_Regex)
	return ok && re.Regex == "*"
}

func headerMatcher(name string, sm *networking.StringMatch) *route.HeaderMatcher {
	hm := &route.HeaderMatcher{Name: name}
	if s := stringMatcher(sm); s != nil && !isPresentMatch(sm) {
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

// isCatchAll reports whether a route matches every request, so routes after
// it can never match (istiod's IsCatchAllRoute).
func isCatchAll(r *route.Route) bool {
	m := r.GetMatch()
	all := false
	switch p := m.GetPathSpecifier().(type) {
	case *route.RouteMatch_Prefix:
		all = p.Prefix == "/"
	case *route.RouteMatch_SafeRegex:
		all = p.SafeRegex.GetRegex() == ".*"
	}
	return all && len(m.GetHeaders()) == 0 && len(m.GetQueryParameters()) == 0
}
