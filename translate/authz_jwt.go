package translate

import (
	"strings"

	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// AuthorizationPolicy's JWT attributes, read from the payload jwt_authn
// puts in its dynamic metadata (authn_jwt.go), as istiod's
// requestPrincipalGenerator, requestClaimGenerator, ...: HTTP only.
const (
	attrReqPrincipal = "request.auth.principal"
	attrReqAudiences = "request.auth.audiences"
	attrReqPresenter = "request.auth.presenter"
	attrReqClaims    = "request.auth.claims"
)

// isJWTAttr reports whether key is one of the JWT attributes (a claims
// key with its [name] path).
func isJWTAttr(key string) bool {
	switch {
	case key == attrReqPrincipal, key == attrReqAudiences, key == attrReqPresenter:
		return true
	case strings.HasPrefix(key, attrReqClaims+"["):
		_, ok := claimPath(key)
		return ok
	}
	return false
}

// claimPath is the nested claim names of request.auth.claims[a][b]...
func claimPath(key string) ([]string, bool) {
	rest := strings.TrimPrefix(key, attrReqClaims)
	var path []string
	for rest != "" {
		if !strings.HasPrefix(rest, "[") {
			return nil, false
		}
		end := strings.IndexByte(rest, ']')
		if end <= 1 {
			return nil, false
		}
		path = append(path, rest[1:end])
		rest = rest[end+1:]
	}
	return path, len(path) > 0
}

// jwtPrincipal is the principal of one value of a JWT attribute.
func jwtPrincipal(key, v string) *rbacpb.Principal {
	switch key {
	case attrReqPrincipal:
		iss, sub := requestPrincipalMatchers(v)
		return principalAnd([]*rbacpb.Principal{
			metadataPrincipal([]string{"iss"}, &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: iss}}),
			metadataPrincipal([]string{"sub"}, &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: sub}}),
		})
	case attrReqAudiences:
		return metadataPrincipal([]string{"aud"}, claimValue(v))
	case attrReqPresenter:
		return metadataPrincipal([]string{"azp"}, claimValue(v))
	}
	path, _ := claimPath(key)
	return metadataPrincipal(path, claimValue(v))
}

// requestPrincipalMatchers splits "<iss>/<sub>" at its last "/" (issuers
// are URLs) into the issuer's and subject's matchers, with istiod's
// wildcards ("*", "*x", "x*" on either side).
func requestPrincipalMatchers(v string) (iss, sub *matcher.StringMatcher) {
	anyValue := regexMatch(".+")
	i := strings.LastIndex(v, "/")
	found := i >= 0
	issV, subV := v, ""
	if found {
		issV, subV = v[:i], v[i+1:]
	}
	exact := func(s string) *matcher.StringMatcher {
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: s}}
	}
	switch {
	case v == "*":
		return anyValue, anyValue
	case strings.HasPrefix(v, "*") && found:
		if issV == "*" {
			return anyValue, exact(subV)
		}
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: issV[1:]}}, exact(subV)
	case strings.HasPrefix(v, "*"):
		return anyValue, &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: v[1:]}}
	case strings.HasSuffix(v, "*") && found:
		if subV == "*" {
			return exact(issV), anyValue
		}
		return exact(issV), &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: strings.TrimSuffix(subV, "*")}}
	case strings.HasSuffix(v, "*"):
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: strings.TrimSuffix(v, "*")}}, anyValue
	}
	return exact(issV), exact(subV)
}

// claimValue matches a claim equal to v, or a list claim holding v (the
// payload keeps lists as lists; space-delimited claims are normalised to
// lists by the filter).
func claimValue(v string) *matcher.ValueMatcher {
	value := &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: stringMatch(v, "")}}
	return &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_OrMatch{OrMatch: &matcher.OrMatcher{
		ValueMatchers: []*matcher.ValueMatcher{
			{MatchPattern: &matcher.ValueMatcher_ListMatch{ListMatch: &matcher.ListMatcher{
				MatchPattern: &matcher.ListMatcher_OneOf{OneOf: value}}}},
			value,
		}}}}
}

// metadataPrincipal matches the token payload's claim at path in the
// request's dynamic metadata (sourced_metadata: Principal.metadata, which
// istiod still uses, is deprecated in Envoy 1.40).
func metadataPrincipal(path []string, v *matcher.ValueMatcher) *rbacpb.Principal {
	segs := []*matcher.MetadataMatcher_PathSegment{{Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: jwtPayloadKey}}}
	for _, p := range path {
		segs = append(segs, &matcher.MetadataMatcher_PathSegment{Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: p}})
	}
	return &rbacpb.Principal{Identifier: &rbacpb.Principal_SourcedMetadata{SourcedMetadata: &rbacpb.SourcedMetadata{
		MetadataMatcher: &matcher.MetadataMatcher{Filter: jwtAuthnFilterName, Path: segs, Value: v}}}}
}
