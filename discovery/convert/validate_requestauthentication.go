package convert

import (
	"fmt"
	"net/url"
	"regexp"

	security "istio.io/api/security/v1beta1"

	"github.com/meshd/meshd/internal/model"
)

// validateRequestAuthentication applies istiod's
// ValidateRequestAuthentication (pkg/config/validation) and the CRD's
// rules, naming the field:
//   - selector and targetRef(s) exclude each other; selector labels as for
//     PeerAuthentication;
//   - a JWT rule needs an issuer or a jwksUri; audiences are not empty;
//   - jwksUri is an absolute http(s) URL with a host;
//   - jwks is a JSON Web Key Set every key of which parses (Envoy refuses
//     the whole listener for one it cannot read);
//   - fromHeaders names, fromParams and fromCookies are not empty;
//     outputClaimToHeaders has a claim and a valid header name;
//   - timeout is positive.
func validateRequestAuthentication(ra *security.RequestAuthentication) *fieldError {
	if fe := validatePolicySelector(ra.GetSelector().GetMatchLabels(), "spec.selector.matchLabels"); fe != nil {
		return fe
	}
	if ra.GetSelector() != nil && (ra.GetTargetRef() != nil || len(ra.GetTargetRefs()) > 0) {
		return errf("spec.targetRefs", "only one of targetRefs or selector can be set")
	}
	for i, r := range ra.GetJwtRules() {
		if fe := validateJWTRule(r, fmt.Sprintf("spec.jwtRules[%d]", i)); fe != nil {
			return fe
		}
	}
	return nil
}

// headerNameRE is a strict HTTP header name (istiod's
// ValidateStrictHTTPHeaderName).
var headerNameRE = regexp.MustCompile(`^[a-zA-Z0-9!#$%&'*+.^_|~` + "`" + `-]+$`)

// validateJWTRule checks one JWT rule at path.
func validateJWTRule(r *security.JWTRule, path string) *fieldError {
	if r == nil {
		return errf(path, "a JWT rule must not be empty")
	}
	if r.GetIssuer() == "" && r.GetJwksUri() == "" {
		return errf(path+".issuer", "issuer or jwksUri must be a non-empty string")
	}
	for i, a := range r.GetAudiences() {
		if a == "" {
			return errf(fmt.Sprintf("%s.audiences[%d]", path, i), "audience must be a non-empty string")
		}
	}
	if u := r.GetJwksUri(); u != "" {
		if fe := validateJWKSURI(u, path+".jwksUri"); fe != nil {
			return fe
		}
	}
	if r.GetJwks() != "" {
		if err := model.ParseJWKS(r.GetJwks()); err != nil {
			return errf(path+".jwks", "%v", err)
		}
	}
	for i, h := range r.GetFromHeaders() {
		if h.GetName() == "" {
			return errf(fmt.Sprintf("%s.fromHeaders[%d].name", path, i), "header name must be a non-empty string")
		}
	}
	for i, p := range r.GetFromParams() {
		if p == "" {
			return errf(fmt.Sprintf("%s.fromParams[%d]", path, i), "query parameter must be a non-empty string")
		}
	}
	for i, c := range r.GetFromCookies() {
		if c == "" {
			return errf(fmt.Sprintf("%s.fromCookies[%d]", path, i), "cookie name must be a non-empty string")
		}
	}
	for i, ch := range r.GetOutputClaimToHeaders() {
		p := fmt.Sprintf("%s.outputClaimToHeaders[%d]", path, i)
		if ch.GetClaim() == "" || ch.GetHeader() == "" {
			return errf(p, "header and claim must be non-empty strings")
		}
		if !headerNameRE.MatchString(ch.GetHeader()) {
			return errf(p+".header", "%q is not a valid HTTP header name", ch.GetHeader())
		}
	}
	if h := r.GetOutputPayloadToHeader(); h != "" && !headerNameRE.MatchString(h) {
		return errf(path+".outputPayloadToHeader", "%q is not a valid HTTP header name", h)
	}
	if t := r.GetTimeout(); t != nil && t.AsDuration() <= 0 {
		return errf(path+".timeout", "timeout must be positive, got %s", t.AsDuration())
	}
	return nil
}

// validateJWKSURI checks a jwksUri as istiod's ParseJwksURI.
func validateJWKSURI(u, path string) *fieldError {
	parsed, err := url.Parse(u)
	if err != nil {
		return errf(path, "invalid URL %q: %v", u, err)
	}
	if parsed.Scheme != "http" && parsed.Scheme != "https" {
		return errf(path, "URL %q must use http or https", u)
	}
	if parsed.Hostname() == "" {
		return errf(path, "URL %q has no host", u)
	}
	return nil
}
