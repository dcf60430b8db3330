package translate

import (
	"encoding/json"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	security "istio.io/api/security/v1beta1"

	"github.com/meshd/meshd/internal/model"
)

// AuthzExplanation is /debug/authorizationz's body (and ExplainScope's
// authorization part): the AuthorizationPolicies that apply to a sidecar's
// workload and the RBAC they became on its inbound chains.
type AuthzExplanation struct {
	// Policies lists the policies in force, root namespace first.
	Policies []AuthzPolicyExplanation `json:"policies"`
	// RequestAuthentications lists the RequestAuthentications in force
	// (Rules counts their JWT rules), and JWTAuthn is the jwt_authn filter
	// they became on the HTTP inbound chains (Envoy's JSON).
	RequestAuthentications []AuthzPolicyExplanation `json:"requestAuthentications,omitempty"`
	JWTAuthn               json.RawMessage          `json:"jwtAuthn,omitempty"`
	// HTTP and TCP are the authorization filters of the HTTP and TCP
	// inbound chains in their order (Envoy's JSON of each filter's config):
	// CUSTOM (RBAC marking, then ext_authz), AUDIT (RBAC LOG), DENY, ALLOW.
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
	Action    string `json:"action,omitempty"`
	Rules     int    `json:"rules"`
}

// explainAuthz explains the scope's authorization, nil for proxyless gRPC
// clients, and unless always, when no policy applies.
func (b *builder) explainAuthz(always bool) *AuthzExplanation {
	if b.grpc {
		return nil
	}
	policies, authn := b.workloadAuthz(), b.workloadRequestAuthn()
	if len(policies) == 0 && len(authn) == 0 && !always {
		return nil
	}
	e := &AuthzExplanation{Policies: []AuthzPolicyExplanation{}}
	for _, cfg := range authn {
		e.RequestAuthentications = append(e.RequestAuthentications, AuthzPolicyExplanation{Namespace: cfg.Namespace,
			Name: cfg.Name, Rules: len(cfg.Spec.(*security.RequestAuthentication).GetJwtRules())})
		e.Errors = append(e.Errors, b.x.jwksErrors(cfg)...)
	}
	if f, _ := b.x.jwtAuthn(authn, b.scope.Type == model.Router); f != nil {
		e.JWTAuthn = anyJSON(f.GetTypedConfig())
	}
	for _, cfg := range policies {
		spec := cfg.Spec.(*security.AuthorizationPolicy)
		e.Policies = append(e.Policies, AuthzPolicyExplanation{Namespace: cfg.Namespace, Name: cfg.Name,
			Action: spec.GetAction().String(), Rules: len(spec.GetRules())})
		e.Errors = append(e.Errors, b.x.unsupportedAuthz(cfg)...)
	}
	if len(policies) == 0 {
		return e
	}
	f := newAuthzFilters(b.x.authzEnv(), nil, policies)
	for _, h := range f.http {
		e.HTTP = append(e.HTTP, anyJSON(h.GetTypedConfig()))
	}
	for _, t := range f.tcp {
		e.TCP = append(e.TCP, anyJSON(t.GetTypedConfig()))
	}
	return e
}

// anyJSON is a filter's config as Envoy's JSON (with its @type).
func anyJSON(a *anypb.Any) json.RawMessage {
	b, err := protojson.Marshal(a)
	if err != nil {
		return json.RawMessage(`{"error":` + strconv.Quote(err.Error()) + `}`)
	}
	return b
}

// ExplainAuthz explains the authorization of a scope (an empty list of
// policies when none applies; nil for other than Envoy sidecars).
func ExplainAuthz(x *Index, scope model.Scope) *AuthzExplanation {
	return newBuilder(x, scope).explainAuthz(true)
}
