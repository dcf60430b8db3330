package translate

import (
	"encoding/json"

	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	"google.golang.org/protobuf/encoding/protojson"
	security "istio.io/api/security/v1beta1"

	"github.com/meshd/meshd/internal/model"
)

// AuthzExplanation is /debug/authorizationz's body (and ExplainScope's
// authorization part): the AuthorizationPolicies that apply to a sidecar's
// workload and the RBAC they became on its inbound chains.
type AuthzExplanation struct {
	// Policies lists the policies in force, root namespace first.
	Policies []AuthzPolicyExplanation `json:"policies"`
	// HTTP and TCP are the RBAC configurations of the HTTP and TCP inbound
	// chains, DENY first, then ALLOW (Envoy's JSON).
	HTTP []json.RawMessage `json:"http,omitempty"`
	TCP  []json.RawMessage `json:"tcp,omitempty"`
	// Errors holds the policies' reported problems (unsupported fields
	// that fail closed).
	Errors []model.ObjectError `json:"errors,omitempty"`
}

// AuthzPolicyExplanation names one policy in force.
type AuthzPolicyExplanation struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Action    string `json:"action"`
	Rules     int    `json:"rules"`
}

// explainAuthz explains the scope's authorization, nil for proxies
// other than Envoy sidecars, and unless always, when no policy applies.
func (b *builder) explainAuthz(always bool) *AuthzExplanation {
	if b.scope.Type != model.SidecarProxy || b.grpc {
		return nil
	}
	policies := b.workloadAuthz()
	if len(policies) == 0 && !always {
		return nil
	}
	e := &AuthzExplanation{Policies: []AuthzPolicyExplanation{}}
	for _, cfg := range policies {
		spec := cfg.Spec.(*security.AuthorizationPolicy)
		e.Policies = append(e.Policies, AuthzPolicyExplanation{Namespace: cfg.Namespace, Name: cfg.Name,
			Action: spec.GetAction().String(), Rules: len(spec.GetRules())})
		e.Errors = append(e.Errors, unsupportedAuthz(cfg)...)
	}
	if len(policies) == 0 {
		return e
	}
	h, t := buildAuthzRules(policies, false), buildAuthzRules(policies, true)
	e.HTTP = rbacJSON(h.deny, h.allow)
	e.TCP = rbacJSON(t.deny, t.allow)
	return e
}

// rbacJSON is each non-nil configuration as Envoy's JSON.
func rbacJSON(rules ...*rbacpb.RBAC) []json.RawMessage {
	var out []json.RawMessage
	for _, r := range rules {
		if r != nil {
			b, err := protojson.Marshal(r)
			if err != nil {
				continue
			}
			out = append(out, b)
		}
	}
	return out
}

// ExplainAuthz explains the authorization of a scope (an empty list of
// policies when none applies; nil for other than Envoy sidecars).
func ExplainAuthz(x *Index, scope model.Scope) *AuthzExplanation {
	return newBuilder(x, scope).explainAuthz(true)
}
