package translate

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1"
)

// headerNameRE is Envoy's HTTP_HEADER_NAME well-known rule: a token,
// optionally a pseudo-header.
var headerNameRE = regexp.MustCompile("^:?[0-9a-zA-Z!#$%&'*+\\-.^_|~`]+$")

// checkVirtualService checks what the translator relies on and Envoy
// would reject: every regex compiles as RE2 (Go's regexp implements the same
// syntax as Envoy's and grpc-go's matchers), header names are tokens, header
// values have no control characters, fault and direct-response codes are in
// range and nested delegation is absent from delegates. It returns the
// offending field. The discovery layer validates too; this keeps
// translation safe for config from any source.
func checkVirtualService(spec *networking.VirtualService, delegate bool) (string, error) {
	for i, hr := range spec.GetHttp() {
		p := fmt.Sprintf("spec.http[%d]", i)
		for j, m := range hr.GetMatch() {
			if f, err := checkMatch(m); err != nil {
				return fmt.Sprintf("%s.match[%d].%s", p, j, f), err
			}
		}
		if f, err := checkHTTPActions(hr, delegate); err != nil {
			return p + "." + f, err
		}
	}
	return checkL4Routes(spec)
}

func checkMatch(m *networking.HTTPMatchRequest) (string, error) {
	for _, f := range []struct {
		name string
		sm   *networking.StringMatch
	}{{"uri", m.GetUri()}, {"scheme", m.GetScheme()}, {"method", m.GetMethod()}, {"authority", m.GetAuthority()}} {
		if err := checkRegex(f.sm, false); err != nil {
			return f.name + ".regex", err
		}
	}
	for _, f := range []struct {
		name string
		m    map[string]*networking.StringMatch
	}{{"headers", m.GetHeaders()}, {"withoutHeaders", m.GetWithoutHeaders()}, {"queryParams", m.GetQueryParams()}} {
		for _, k := range slices.Sorted(maps.Keys(f.m)) {
			if f.name != "queryParams" && strings.HasPrefix(k, "@request.auth.claims") {
				return f.name + "." + k, fmt.Errorf("routing on JWT claims (%q) is not supported by meshd", k)
			}
			if f.name != "queryParams" && !headerNameRE.MatchString(k) {
				return f.name + "." + k, fmt.Errorf("%q is not a valid HTTP header name", k)
			}
			if err := checkRegex(f.m[k], true); err != nil {
				return f.name + "." + k + ".regex", err
			}
		}
	}
	return "", nil
}

// checkRegex compiles a StringMatch's regex; presence allows "*", istiod's
// "header is present".
func checkRegex(sm *networking.StringMatch, presence bool) error {
	re, ok := sm.GetMatchType().(*networking.StringMatch_Regex)
	if !ok || (presence && re.Regex == "*") {
		return nil
	}
	if _, err := regexp.Compile(re.Regex); err != nil {
		return fmt.Errorf("invalid RE2 regex %q: %v", re.Regex, err)
	}
	return nil
}

func checkHTTPActions(hr *networking.HTTPRoute, delegate bool) (string, error) {
	if len(hr.GetRoute()) == 0 && hr.GetRedirect() == nil && hr.GetDirectResponse() == nil && hr.GetDelegate() == nil {
		return "route", fmt.Errorf("an HTTP route needs a route destination, a redirect, a directResponse or a delegate")
	}
	if delegate && hr.GetDelegate() != nil {
		return "delegate", fmt.Errorf("a delegate VirtualService cannot delegate further (only one level of delegation is supported)")
	}
	if rr := hr.GetRewrite().GetUriRegexRewrite(); rr != nil {
		if _, err := regexp.Compile(rr.GetMatch()); err != nil {
			return "rewrite.uriRegexRewrite.match", fmt.Errorf("invalid RE2 regex %q: %v", rr.GetMatch(), err)
		}
	}
	for i, o := range hr.GetCorsPolicy().GetAllowOrigins() {
		if err := checkRegex(o, false); err != nil {
			return fmt.Sprintf("corsPolicy.allowOrigins[%d].regex", i), err
		}
	}
	if f, err := checkFault(hr.GetFault()); err != nil {
		return f, err
	}
	if dr := hr.GetDirectResponse(); dr != nil && (dr.GetStatus() < 100 || dr.GetStatus() > 599) {
		return "directResponse.status", fmt.Errorf("status %d is out of range 100-599", dr.GetStatus())
	}
	if f, err := checkHeaderOps(hr.GetHeaders()); err != nil {
		return "headers." + f, err
	}
	for j, d := range hr.GetRoute() {
		if f, err := checkHeaderOps(d.GetHeaders()); err != nil {
			return fmt.Sprintf("route[%d].headers.%s", j, f), err
		}
	}
	if len(hr.GetRoute()) > 1 && !slices.ContainsFunc(hr.GetRoute(), func(d *networking.HTTPRouteDestination) bool { return d.GetWeight() > 0 }) {
		return "route", fmt.Errorf("every destination has weight 0")
	}
	return "", nil
}

func checkFault(f *networking.HTTPFaultInjection) (string, error) {
	if d := f.GetDelay(); d != nil && d.GetFixedDelay() != nil && d.GetFixedDelay().AsDuration() <= 0 {
		return "fault.delay.fixedDelay", fmt.Errorf("fixed delay must be positive")
	}
	switch e := f.GetAbort().GetErrorType().(type) {
	case *networking.HTTPFaultInjection_Abort_HttpStatus:
		if e.HttpStatus < 200 || e.HttpStatus > 599 {
			return "fault.abort.httpStatus", fmt.Errorf("HTTP status %d is out of range 200-599", e.HttpStatus)
		}
	case *networking.HTTPFaultInjection_Abort_GrpcStatus:
		if _, ok := grpcStatusCodes[strings.ToUpper(e.GrpcStatus)]; !ok {
			return "fault.abort.grpcStatus", fmt.Errorf("%q is not a gRPC status name (e.g. UNAVAILABLE)", e.GrpcStatus)
		}
	}
	return "", nil
}

func checkHeaderOps(h *networking.Headers) (string, error) {
	for _, side := range []struct {
		name string
		ops  *networking.Headers_HeaderOperations
	}{{"request", h.GetRequest()}, {"response", h.GetResponse()}} {
		for _, m := range []map[string]string{side.ops.GetSet(), side.ops.GetAdd()} {
			for _, k := range slices.Sorted(maps.Keys(m)) {
				if !headerNameRE.MatchString(k) {
					return side.name + "." + k, fmt.Errorf("%q is not a valid HTTP header name", k)
				}
				if strings.ContainsAny(m[k], "\x00\r\n") {
					return side.name + "." + k, fmt.Errorf("header value contains a NUL, CR or LF")
				}
			}
		}
		for _, k := range side.ops.GetRemove() {
			if !headerNameRE.MatchString(k) {
				return side.name + ".remove", fmt.Errorf("%q is not a valid HTTP header name", k)
			}
		}
	}
	return "", nil
}
