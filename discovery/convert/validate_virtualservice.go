package convert

import (
	"maps"
	"regexp"
	"slices"

	networking "istio.io/api/networking/v1"
)

// validateVirtualService checks a VirtualService spec on its own. Whether the
// destination hosts exist depends on the registry and is the translator's job.
func validateVirtualService(vs *networking.VirtualService) *fieldError {
	if len(vs.GetHosts()) == 0 && (len(vs.GetGateways()) > 0 || len(vs.GetTcp())+len(vs.GetTls()) > 0) {
		return errf("spec.hosts", "a VirtualService without hosts is a delegate: it may have only http routes and no gateways")
	}
	for i, h := range vs.GetHosts() {
		if h == "" {
			return errf(at("spec.hosts", i), "host must not be empty")
		}
	}
	if len(vs.GetHttp())+len(vs.GetTcp())+len(vs.GetTls()) == 0 {
		return errf("spec", "at least one http, tcp or tls route is required")
	}
	for i, r := range vs.GetHttp() {
		if fe := validateHTTPRoute(r, at("spec.http", i)); fe != nil {
			return fe
		}
	}
	for i, r := range vs.GetTcp() {
		if fe := validateRouteDestinations(at("spec.tcp", i)+".route", r.GetRoute()); fe != nil {
			return fe
		}
	}
	for i, r := range vs.GetTls() {
		p := at("spec.tls", i)
		if len(r.GetMatch()) == 0 {
			return errf(p+".match", "a TLS route needs at least one match with sniHosts")
		}
		for j, m := range r.GetMatch() {
			if len(m.GetSniHosts()) == 0 {
				return errf(at(p+".match", j)+".sniHosts", "at least one SNI host is required")
			}
		}
		if fe := validateRouteDestinations(p+".route", r.GetRoute()); fe != nil {
			return fe
		}
	}
	return nil
}

func validateHTTPRoute(r *networking.HTTPRoute, p string) *fieldError {
	hasRoute := len(r.GetRoute()) > 0
	switch {
	case !hasRoute && r.GetRedirect() == nil && r.GetDirectResponse() == nil && r.GetDelegate() == nil:
		return errf(p+".route", "an HTTP route needs at least one route destination, a redirect, a directResponse or a delegate")
	case hasRoute && r.GetRedirect() != nil:
		return errf(p+".redirect", "route and redirect cannot both be set")
	case r.GetDirectResponse() != nil && (hasRoute || r.GetRedirect() != nil):
		return errf(p+".directResponse", "directResponse cannot be combined with route or redirect")
	case r.GetDelegate() != nil && (hasRoute || r.GetRedirect() != nil):
		return errf(p+".delegate", "delegate cannot be combined with route or redirect")
	}
	for i, m := range r.GetMatch() {
		if fe := validateHTTPMatch(m, at(p+".match", i)); fe != nil {
			return fe
		}
	}
	if hasRoute {
		if fe := validateRouteDestinations(p+".route", r.GetRoute()); fe != nil {
			return fe
		}
	}
	return validateHTTPActions(r, p)
}

// validateHTTPActions checks the parts of an HTTP route other than its
// matches and destinations.
func validateHTTPActions(r *networking.HTTPRoute, p string) *fieldError {
	if d := r.GetDelegate(); d != nil && d.GetName() == "" {
		return errf(p+".delegate.name", "delegate name is required")
	}
	if rd := r.GetRedirect(); rd != nil {
		switch rd.GetRedirectCode() {
		case 0, 301, 302, 303, 307, 308:
		default:
			return errf(p+".redirect.redirectCode", "redirect code %d is not one of 301, 302, 303, 307, 308", rd.GetRedirectCode())
		}
	}
	if dr := r.GetDirectResponse(); dr != nil && (dr.GetStatus() < 200 || dr.GetStatus() > 599) {
		return errf(p+".directResponse.status", "status %d is out of range 200-599", dr.GetStatus())
	}
	if rt := r.GetRetries(); rt != nil && rt.GetAttempts() < 0 {
		return errf(p+".retries.attempts", "attempts %d must not be negative", rt.GetAttempts())
	}
	if m := r.GetMirror(); m != nil {
		if fe := validateDestination(m, p+".mirror"); fe != nil {
			return fe
		}
	}
	if fe := validatePercent(r.GetMirrorPercentage(), p+".mirrorPercentage"); fe != nil {
		return fe
	}
	if f := r.GetFault(); f != nil {
		if fe := validatePercent(f.GetDelay().GetPercentage(), p+".fault.delay.percentage"); fe != nil {
			return fe
		}
		return validatePercent(f.GetAbort().GetPercentage(), p+".fault.abort.percentage")
	}
	return nil
}

func validatePercent(pc *networking.Percent, p string) *fieldError {
	if pc != nil && (pc.GetValue() < 0 || pc.GetValue() > 100) {
		return errf(p+".value", "percentage %g is out of range 0-100", pc.GetValue())
	}
	return nil
}

// validateHTTPMatch checks that every regex in the match compiles with RE2
// (Go's regexp implements the same syntax as Envoy's RE2 matcher).
func validateHTTPMatch(m *networking.HTTPMatchRequest, p string) *fieldError {
	for _, f := range []struct {
		name string
		sm   *networking.StringMatch
	}{{"uri", m.GetUri()}, {"scheme", m.GetScheme()}, {"method", m.GetMethod()}, {"authority", m.GetAuthority()}} {
		if fe := validateStringMatch(f.sm, p+"."+f.name); fe != nil {
			return fe
		}
	}
	for _, f := range []struct {
		name string
		m    map[string]*networking.StringMatch
	}{{"headers", m.GetHeaders()}, {"queryParams", m.GetQueryParams()}, {"withoutHeaders", m.GetWithoutHeaders()}} {
		for _, k := range slices.Sorted(maps.Keys(f.m)) {
			if fe := validateStringMatch(f.m[k], key(p+"."+f.name, k)); fe != nil {
				return fe
			}
		}
	}
	return nil
}

func validateStringMatch(sm *networking.StringMatch, p string) *fieldError {
	re, ok := sm.GetMatchType().(*networking.StringMatch_Regex)
	if !ok {
		return nil
	}
	if _, err := regexp.Compile(re.Regex); err != nil {
		return errf(p+".regex", "invalid RE2 regex %q: %v", re.Regex, err)
	}
	return nil
}

// weighted is an HTTP or TCP/TLS route destination.
type weighted interface {
	GetDestination() *networking.Destination
	GetWeight() int32
}

// validateRouteDestinations checks the destinations of one route: at least
// one, each with a host and a weight in 0-100, and weights summing to 100
// when there is more than one destination.
func validateRouteDestinations[T weighted](p string, route []T) *fieldError {
	if len(route) == 0 {
		return errf(p, "at least one route destination is required")
	}
	sum := int32(0)
	for i, d := range route {
		dp := at(p, i)
		if d.GetDestination() == nil {
			return errf(dp+".destination", "destination is required")
		}
		if fe := validateDestination(d.GetDestination(), dp+".destination"); fe != nil {
			return fe
		}
		if w := d.GetWeight(); w < 0 || w > 100 {
			return errf(dp+".weight", "weight %d is out of range 0-100", w)
		}
		sum += d.GetWeight()
	}
	if len(route) > 1 && sum != 100 {
		return errf(p, "weights of the %d destinations sum to %d, want 100", len(route), sum)
	}
	return nil
}

func validateDestination(d *networking.Destination, p string) *fieldError {
	if d.GetHost() == "" {
		return errf(p+".host", "destination host is required")
	}
	if n := d.GetPort().GetNumber(); n > 65535 {
		return errf(p+".port.number", "port %d is out of range 1-65535", n)
	}
	return nil
}
