package translate

import (
	"maps"
	"slices"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
)

// redirectAction translates an HTTPRedirect as istiod's ApplyRedirect.
// Redirect codes are validated on input; an unknown one falls back to 301.
func redirectAction(rd *networking.HTTPRedirect, port uint32, tls bool) *route.Route_Redirect {
	ra := &route.RedirectAction{HostRedirect: rd.GetAuthority()}
	if rd.GetUri() != "" {
		ra.PathRewriteSpecifier = &route.RedirectAction_PathRedirect{PathRedirect: rd.GetUri()}
	}
	if rd.GetScheme() != "" {
		ra.SchemeRewriteSpecifier = &route.RedirectAction_SchemeRedirect{SchemeRedirect: rd.GetScheme()}
	}
	if rd.GetRedirectPort() != nil {
		switch p := rd.GetRedirectPort().(type) {
		case *networking.HTTPRedirect_DerivePort:
			if p.DerivePort == networking.HTTPRedirect_FROM_REQUEST_PORT {
				ra.PortRedirect = port
			}
		case *networking.HTTPRedirect_Port:
			ra.PortRedirect = p.Port
		}
		scheme := rd.GetScheme()
		switch {
		case scheme != "":
		case tls:
			scheme = "https"
		default:
			scheme = "http"
		}
		if (ra.PortRedirect == 80 && scheme == "http") || (ra.PortRedirect == 443 && scheme == "https") {
			ra.PortRedirect = 0
		}
	}
	switch rd.GetRedirectCode() {
	case 302:
		ra.ResponseCode = route.RedirectAction_FOUND
	case 303:
		ra.ResponseCode = route.RedirectAction_SEE_OTHER
	case 307:
		ra.ResponseCode = route.RedirectAction_TEMPORARY_REDIRECT
	case 308:
		ra.ResponseCode = route.RedirectAction_PERMANENT_REDIRECT
	default:
		ra.ResponseCode = route.RedirectAction_MOVED_PERMANENTLY
	}
	return &route.Route_Redirect{Redirect: ra}
}

// directResponseAction translates an HTTPDirectResponse.
func directResponseAction(dr *networking.HTTPDirectResponse) *route.Route_DirectResponse {
	a := &route.DirectResponseAction{Status: dr.GetStatus()}
	switch b := dr.GetBody().GetSpecifier().(type) {
	case *networking.HTTPBody_String_:
		a.Body = &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: b.String_}}
	case *networking.HTTPBody_Bytes:
		a.Body = &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: b.Bytes}}
	}
	return &route.Route_DirectResponse{DirectResponse: a}
}

// applyRewrite sets the path rewrite of ra and returns the authority to
// rewrite to (the rewrite's, else the one from header operations).
func applyRewrite(ra *route.RouteAction, rw *networking.HTTPRewrite, authority string) string {
	if rw == nil {
		return authority
	}
	if rr := rw.GetUriRegexRewrite(); rr != nil {
		ra.RegexRewrite = &matcher.RegexMatchAndSubstitute{Pattern: regexMatcher(rr.GetMatch()), Substitution: rr.GetRewrite()}
	} else if rw.GetUri() != "" {
		ra.PrefixRewrite = rw.GetUri()
	}
	if rw.GetAuthority() != "" {
		return rw.GetAuthority()
	}
	return authority
}

// mirrorPolicies translates mirror/mirrorPercentage and mirrors. A mirror
// with an explicit 0% is left out; no percentage means 100%.
func (x *Index) mirrorPolicies(vs *virtualService, hr *networking.HTTPRoute, port uint32) []*route.RouteAction_RequestMirrorPolicy {
	var out []*route.RouteAction_RequestMirrorPolicy
	add := func(d *networking.Destination, pc *networking.Percent) {
		if d == nil || (pc != nil && pc.GetValue() <= 0) {
			return
		}
		frac := &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED}
		if pc != nil {
			frac = fractionalPercent(pc)
		}
		out = append(out, &route.RouteAction_RequestMirrorPolicy{
			Cluster:         x.destinationCluster(vs.cfg.Namespace, d, port),
			RuntimeFraction: &core.RuntimeFractionalPercent{DefaultValue: frac},
			TraceSampled:    wrapperspb.Bool(false),
		})
	}
	if hr.GetMirror() != nil {
		add(hr.GetMirror(), hr.GetMirrorPercentage())
	}
	for _, m := range hr.GetMirrors() {
		add(m.GetDestination(), m.GetPercentage())
	}
	return out
}

// fractionalPercent converts an Istio Percent (0-100, fractional) to
// millionths, as istiod does.
func fractionalPercent(p *networking.Percent) *typev3.FractionalPercent {
	return &typev3.FractionalPercent{Numerator: uint32(p.GetValue() * 10000), Denominator: typev3.FractionalPercent_MILLION}
}

// headerOps is the Envoy form of an Istio Headers block.
type headerOps struct {
	reqAdd, respAdd       []*core.HeaderValueOption
	reqRemove, respRemove []string
	authority             string
}

// translateHeaders converts header operations as istiod's
// TranslateHeadersOperations: set overwrites, add appends, pseudo-headers
// and Host are never touched, a set or added :authority/host becomes an
// authority rewrite (set wins over add).
func translateHeaders(h *networking.Headers) headerOps {
	var ops headerOps
	setAuth := ""
	ops.reqAdd, setAuth = headerValues(h.GetRequest().GetSet(), false)
	add, addAuth := headerValues(h.GetRequest().GetAdd(), true)
	ops.reqAdd = append(ops.reqAdd, add...)
	ops.respAdd, _ = headerValues(h.GetResponse().GetSet(), false)
	add, _ = headerValues(h.GetResponse().GetAdd(), true)
	ops.respAdd = append(ops.respAdd, add...)
	ops.reqRemove = dropInternal(h.GetRequest().GetRemove())
	ops.respRemove = dropInternal(h.GetResponse().GetRemove())
	ops.authority = addAuth
	if setAuth != "" {
		ops.authority = setAuth
	}
	return ops
}

func headerValues(m map[string]string, appendValue bool) ([]*core.HeaderValueOption, string) {
	authority := ""
	var out []*core.HeaderValueOption
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if strings.EqualFold(k, ":authority") || strings.EqualFold(k, "host") {
			authority = m[k]
		}
		if isInternalHeader(k) {
			continue
		}
		action := core.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		if appendValue {
			action = core.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
		}
		out = append(out, &core.HeaderValueOption{Header: &core.HeaderValue{Key: k, Value: m[k]}, AppendAction: action})
	}
	return out, authority
}

func isInternalHeader(k string) bool {
	return strings.HasPrefix(k, ":") || strings.EqualFold(k, "host")
}

func dropInternal(keys []string) []string {
	var out []string
	for _, k := range keys {
		if !isInternalHeader(k) {
			out = append(out, k)
		}
	}
	return out
}

// applyHeaderOps sets the route-level header operations and returns the
// authority they rewrite to, if any.
func applyHeaderOps(r *route.Route, h *networking.Headers) string {
	if h == nil {
		return ""
	}
	ops := translateHeaders(h)
	r.RequestHeadersToAdd, r.ResponseHeadersToAdd = ops.reqAdd, ops.respAdd
	r.RequestHeadersToRemove, r.ResponseHeadersToRemove = ops.reqRemove, ops.respRemove
	return ops.authority
}

// applyDestinationHeaders appends a single destination's header operations
// to the route; its authority applies unless the route already rewrites it.
func applyDestinationHeaders(r *route.Route, ra *route.RouteAction, h *networking.Headers) {
	if h == nil {
		return
	}
	ops := translateHeaders(h)
	r.RequestHeadersToAdd = append(r.RequestHeadersToAdd, ops.reqAdd...)
	r.RequestHeadersToRemove = append(r.RequestHeadersToRemove, ops.reqRemove...)
	r.ResponseHeadersToAdd = append(r.ResponseHeadersToAdd, ops.respAdd...)
	r.ResponseHeadersToRemove = append(r.ResponseHeadersToRemove, ops.respRemove...)
	if ops.authority != "" && ra.HostRewriteSpecifier == nil {
		ra.HostRewriteSpecifier = &route.RouteAction_HostRewriteLiteral{HostRewriteLiteral: ops.authority}
	}
}

// applyClusterWeightHeaders sets a weighted destination's header operations.
func applyClusterWeightHeaders(cw *route.WeightedCluster_ClusterWeight, h *networking.Headers) {
	if h == nil {
		return
	}
	ops := translateHeaders(h)
	cw.RequestHeadersToAdd, cw.ResponseHeadersToAdd = ops.reqAdd, ops.respAdd
	cw.RequestHeadersToRemove, cw.ResponseHeadersToRemove = ops.reqRemove, ops.respRemove
	if ops.authority != "" {
		cw.HostRewriteSpecifier = &route.WeightedCluster_ClusterWeight_HostRewriteLiteral{HostRewriteLiteral: ops.authority}
	}
}
