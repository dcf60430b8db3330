package translate

import (
	"fmt"
	"sort"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	jwtauthn "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/emptypb"
	security "istio.io/api/security/v1beta1"

	"github.com/meshd/meshd/internal/model"
)

// RequestAuthentication (security.istio.io) → Envoy's jwt_authn HTTP
// filter on a sidecar's inbound HTTP chains, as istiod's
// pilot/pkg/security/authn (convertToEnvoyJwtConfig) builds it:
//   - the policies applying to the workload are selected as
//     AuthorizationPolicies are (root namespace, then the workload's, by
//     selector or targetRefs);
//   - their JWT rules, sorted by issuer, become providers "origins-<i>"
//     writing the token's payload to the filter's dynamic metadata under
//     "payload" (where AuthorizationPolicy's requestPrincipals and
//     request.auth.* conditions read it);
//   - a request without a token passes (allow_missing), one with an
//     invalid token is refused with 401: a token, if present, must be
//     valid for one provider;
//   - keys are always inline (istiod's default PILOT_JWT_ENABLE_REMOTE_JWKS
//     =false): a rule's jwks, or the key set meshd fetched for its jwksUri
//     (internal/jwks). A key set not fetched yet, or whose fetch failed
//     with none fetched before, fails closed: the provider gets a public
//     key whose private key no one holds, so every token of that issuer is
//     refused, and the failure is reported on the RequestAuthentication.

const (
	jwtAuthnFilterName = "envoy.filters.http.jwt_authn"
	// jwtPayloadKey is where providers put a valid token's payload in the
	// filter's dynamic metadata (istiod's EnvoyJwtFilterPayload).
	jwtPayloadKey = "payload"
)

// failClosedJWKS is a public RSA key whose private key was discarded when
// it was generated: no token verifies against it.
const failClosedJWKS = `{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"meshd-fail-closed","e":"AQAB",` +
	`"n":"wg0IAfIXv2DQBeZ8AufcKb5OClyve5abnLgqwOtsR1cXNyfIY93DCiESGfRLNoxG6huvdJ7_jlcRJt3MEyIJaEwl70172TT0dRqhn52Hh7eSpNuOB1vpVKBCCcPSTeKdYRgsGvCKmiPafevn3UhxH2JEUyo_4GVIXWhcPig1uhNP5-lThax4eE0EXCAuQiW8ntRxjk2yJgIL6Su99lft631t-4ddJ6vbsFB6NtCehs3qaU24019cqtpr0-dWlFOkzd6tBuj_Eeg3W_O-HES4kisL1sObXalx6Xz7GuCVDxsi0ISW1eSAMEkg84jQ-ZSSYVgWUO2HcdHM-OmMcyeBEw"}]}`

// jwksSourceName is the name meshd fetches a rule's keys under
// (model.JWKSName), "" for inline jwks.
func jwksSourceName(r *security.JWTRule) string {
	if r.GetJwks() != "" {
		return ""
	}
	return model.JWKSName(r.GetJwksUri(), r.GetIssuer())
}

// jwtKeys returns the key set for r and whether it is the fail-closed one.
func (x *Index) jwtKeys(r *security.JWTRule) (string, bool) {
	name := jwksSourceName(r)
	if name == "" {
		return r.GetJwks(), false
	}
	if j, ok := x.snap.JWKS(name); ok && j.Keys != "" {
		return j.Keys, false
	}
	return failClosedJWKS, true
}

// indexRequestAuthentications reports the key sets meshd could not fetch
// on the RequestAuthentications that name them.
func (x *Index) indexRequestAuthentications() {
	rx := x.requestAuthn()
	for _, cfgs := range sortedNamespaces(rx.byNS) {
		for _, cfg := range cfgs {
			x.errors = append(x.errors, x.jwksErrors(cfg)...)
			x.errors = append(x.errors, rx.targetRefErrors(cfg)...)
		}
	}
}

// jwksErrors reports the rules of cfg whose key set's last fetch failed.
func (x *Index) jwksErrors(cfg *model.Config) []model.ObjectError {
	var out []model.ObjectError
	for i, r := range cfg.Spec.(*security.RequestAuthentication).GetJwtRules() {
		name := jwksSourceName(r)
		j, ok := x.snap.JWKS(name)
		if name == "" || !ok || j.Err == "" {
			continue
		}
		field := fmt.Sprintf("spec.jwtRules[%d].jwksUri", i)
		if r.GetJwksUri() == "" {
			field = fmt.Sprintf("spec.jwtRules[%d].issuer", i)
		}
		effect := "every token of issuer " + r.GetIssuer() + " is rejected until a fetch succeeds (fail closed)"
		if j.Keys != "" {
			effect = "the key set fetched at " + j.Fetched.UTC().Format(time.RFC3339) + " is still used"
		}
		out = append(out, model.ObjectError{Kind: model.KindRequestAuthentication, Namespace: cfg.Namespace,
			Name: cfg.Name, Source: cfg.Source, Field: field, Message: "fetching the JWKS: " + j.Err + ": " + effect})
	}
	return out
}

// workloadRequestAuthn returns the RequestAuthentications that apply to
// the scope's workload.
func (b *builder) workloadRequestAuthn() []*model.Config {
	return b.x.requestAuthn().policiesFor(b.scope.Namespace, b.scope.LabelMap())
}

// jwtRules lists the rules of policies sorted by issuer (stable: policies'
// order breaks ties), as istiod.
func jwtRules(policies []*model.Config) []*security.JWTRule {
	var rules []*security.JWTRule
	for _, cfg := range policies {
		rules = append(rules, cfg.Spec.(*security.RequestAuthentication).GetJwtRules()...)
	}
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].GetIssuer() < rules[j].GetIssuer() })
	return rules
}

// jwtFilterKey names a built jwt_authn filter among the Index's shared
// values: the policies (names and content hashes; the key sets they use
// are the Index's, as is the memo) and whether the route cache is cleared.
type jwtFilterKey struct {
	policies   string
	clearRoute bool
}

// jwtAuthn returns the jwt_authn filter of policies (nil with no rule) and
// the part of an outputKey naming it, built once per Index for every scope
// under the same policies. Gateways clear the route cache (istiod's
// clearRouteCache), so routes chosen on claim headers see them.
func (x *Index) jwtAuthn(policies []*model.Config, gateway bool) (*hcm.HttpFilter, string) {
	if len(policies) == 0 {
		return nil, ""
	}
	pk := x.requestAuthn().key(policies)
	f := x.shared.get(jwtFilterKey{policies: pk, clearRoute: gateway}, func() any {
		return x.jwtFilter(policies, gateway)
	}).(*hcm.HttpFilter)
	return f, pk
}

// jwtFilter is the jwt_authn filter of policies, nil when they have no
// rule.
func (x *Index) jwtFilter(policies []*model.Config, clearRouteCache bool) *hcm.HttpFilter {
	rules := jwtRules(policies)
	if len(rules) == 0 {
		return nil
	}
	cfg := &jwtauthn.JwtAuthentication{Providers: map[string]*jwtauthn.JwtProvider{}, BypassCorsPreflight: true}
	var each, any []*jwtauthn.JwtRequirement
	for i, r := range rules {
		name := fmt.Sprintf("origins-%d", i)
		keys, _ := x.jwtKeys(r)
		cfg.Providers[name] = jwtProvider(r, keys)
		cfg.Providers[name].ClearRouteCache = clearRouteCache
		one := &jwtauthn.JwtRequirement{RequiresType: &jwtauthn.JwtRequirement_ProviderName{ProviderName: name}}
		each = append(each, &jwtauthn.JwtRequirement{RequiresType: &jwtauthn.JwtRequirement_RequiresAny{
			RequiresAny: &jwtauthn.JwtRequirementOrList{Requirements: []*jwtauthn.JwtRequirement{
				one, {RequiresType: &jwtauthn.JwtRequirement_AllowMissing{AllowMissing: &emptypb.Empty{}}}}}}})
		any = append(any, one)
	}
	req := each[0]
	if len(each) > 1 {
		// A token from any provider, or every provider's token valid or
		// missing (providers sharing a location always fail the AND).
		req = &jwtauthn.JwtRequirement{RequiresType: &jwtauthn.JwtRequirement_RequiresAny{
			RequiresAny: &jwtauthn.JwtRequirementOrList{Requirements: append(any, &jwtauthn.JwtRequirement{
				RequiresType: &jwtauthn.JwtRequirement_RequiresAll{RequiresAll: &jwtauthn.JwtRequirementAndList{Requirements: each}}})}}}
	}
	cfg.Rules = []*jwtauthn.RequirementRule{{
		Match:           &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}},
		RequirementType: &jwtauthn.RequirementRule_Requires{Requires: req},
	}}
	return &hcm.HttpFilter{Name: jwtAuthnFilterName, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(cfg)}}
}

// jwtProvider is one rule's provider with its inline keys.
func jwtProvider(r *security.JWTRule, keys string) *jwtauthn.JwtProvider {
	p := &jwtauthn.JwtProvider{
		Issuer:               r.GetIssuer(),
		Audiences:            r.GetAudiences(),
		Forward:              r.GetForwardOriginalToken(),
		ForwardPayloadHeader: r.GetOutputPayloadToHeader(),
		PayloadInMetadata:    jwtPayloadKey,
		NormalizePayloadInMetadata: &jwtauthn.JwtProvider_NormalizePayload{
			SpaceDelimitedClaims: spaceDelimitedClaims(r.GetSpaceDelimitedClaims()),
		},
		FromParams:  r.GetFromParams(),
		FromCookies: r.GetFromCookies(),
		JwksSourceSpecifier: &jwtauthn.JwtProvider_LocalJwks{LocalJwks: &core.DataSource{
			Specifier: &core.DataSource_InlineString{InlineString: keys}}},
	}
	for _, h := range r.GetFromHeaders() {
		p.FromHeaders = append(p.FromHeaders, &jwtauthn.JwtHeader{Name: h.GetName(), ValuePrefix: h.GetPrefix()})
	}
	for _, ch := range r.GetOutputClaimToHeaders() {
		p.ClaimToHeaders = append(p.ClaimToHeaders, &jwtauthn.JwtClaimToHeader{HeaderName: ch.GetHeader(), ClaimName: ch.GetClaim()})
	}
	return p
}

// spaceDelimitedClaims are "permission" and "scope" plus the rule's own,
// sorted and without duplicates, as istiod's.
func spaceDelimitedClaims(extra []string) []string {
	set := map[string]bool{"permission": true, "scope": true}
	for _, c := range extra {
		set[c] = true
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
