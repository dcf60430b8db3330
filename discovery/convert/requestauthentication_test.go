package convert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	security "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"

	"github.com/meshd/meshd/internal/model"
)

const validJWKS = `{"keys":[{"kty":"RSA","e":"AQAB","n":"wg0IAfIXv2DQBeZ8AufcKb5OClyve5abnLgqwOtsR1cXNyfIY93DCiESGfRLNoxG6huvdJ7_jlcRJt3MEyIJaEwl70172TT0dRqhn52Hh7eSpNuOB1vpVKBCCcPSTeKdYRgsGvCKmiPafevn3UhxH2JEUyo_4GVIXWhcPig1uhNP5-lThax4eE0EXCAuQiW8ntRxjk2yJgIL6Su99lft631t-4ddJ6vbsFB6NtCehs3qaU24019cqtpr0-dWlFOkzd6tBuj_Eeg3W_O-HES4kisL1sObXalx6Xz7GuCVDxsi0ISW1eSAMEkg84jQ-ZSSYVgWUO2HcdHM-OmMcyeBEw"}]}`

// requestAuthn converts a RequestAuthentication spec written in YAML.
func requestAuthn(t *testing.T, spec string) (*model.Config, error) {
	t.Helper()
	o := &securityv1.RequestAuthentication{ObjectMeta: *testMeta.DeepCopy()}
	specFromYAML(t, spec, &o.Spec)
	return RequestAuthentication(o)
}

func TestRequestAuthenticationValid(t *testing.T) {
	for _, spec := range []string{
		`{}`,
		`{jwtRules: [{issuer: "https://a.example"}]}`, // OpenID discovery of the issuer
		`{selector: {matchLabels: {app: a}}, jwtRules: [{issuer: i, jwksUri: "https://a.example/keys", audiences: [x],
		  fromHeaders: [{name: x-token, prefix: "Bearer "}], fromParams: [t], fromCookies: [c],
		  outputClaimToHeaders: [{header: x-sub, claim: sub}], outputPayloadToHeader: x-payload, timeout: 3s}]}`,
		`{jwtRules: [{issuer: i, jwks: '` + validJWKS + `'}]}`,
	} {
		cfg, err := requestAuthn(t, spec)
		require.NoError(t, err, spec)
		assert.Equal(t, model.KindRequestAuthentication, cfg.Kind)
		assert.IsType(t, &security.RequestAuthentication{}, cfg.Spec)
	}
}

func TestRequestAuthenticationErrors(t *testing.T) {
	tests := []struct {
		name, spec, field, msg string
	}{
		{"no issuer nor jwksUri", `{jwtRules: [{audiences: [a]}]}`, "spec.jwtRules[0].issuer", "issuer or jwksUri"},
		{"empty audience", `{jwtRules: [{issuer: i, audiences: [a, ""]}]}`, "spec.jwtRules[0].audiences[1]", "non-empty"},
		{"jwksUri scheme", `{jwtRules: [{issuer: i, jwksUri: "ftp://a/keys"}]}`, "spec.jwtRules[0].jwksUri", "http or https"},
		{"jwksUri host", `{jwtRules: [{issuer: i, jwksUri: "https:///keys"}]}`, "spec.jwtRules[0].jwksUri", "no host"},
		{"jwks not JSON", `{jwtRules: [{issuer: i, jwks: "nope"}]}`, "spec.jwtRules[0].jwks", "not a JSON Web Key Set"},
		{"jwks without keys", `{jwtRules: [{issuer: i, jwks: '{"keys":[]}'}]}`, "spec.jwtRules[0].jwks", "no keys"},
		{"jwks bad key", `{jwtRules: [{issuer: i, jwks: '{"keys":[{"kty":"RSA","n":"","e":""}]}'}]}`, "spec.jwtRules[0].jwks", "keys[0]"},
		{"empty header", `{jwtRules: [{issuer: i, fromHeaders: [{prefix: x}]}]}`, "spec.jwtRules[0].fromHeaders[0].name", "non-empty"},
		{"empty param", `{jwtRules: [{issuer: i, fromParams: [""]}]}`, "spec.jwtRules[0].fromParams[0]", "non-empty"},
		{"empty cookie", `{jwtRules: [{issuer: i, fromCookies: [""]}]}`, "spec.jwtRules[0].fromCookies[0]", "non-empty"},
		{"claim header", `{jwtRules: [{issuer: i, outputClaimToHeaders: [{header: "bad header", claim: sub}]}]}`,
			"spec.jwtRules[0].outputClaimToHeaders[0].header", "not a valid HTTP header name"},
		{"claim missing", `{jwtRules: [{issuer: i, outputClaimToHeaders: [{header: x}]}]}`,
			"spec.jwtRules[0].outputClaimToHeaders[0]", "non-empty"},
		{"payload header", `{jwtRules: [{issuer: i, outputPayloadToHeader: "a:b"}]}`, "spec.jwtRules[0].outputPayloadToHeader", "not a valid"},
		{"selector and targetRefs", `{selector: {matchLabels: {a: b}}, targetRefs: [{kind: Service, name: s}]}`, "spec.targetRefs", "only one"},
		{"wildcard label", `{selector: {matchLabels: {app: "a*"}}}`, "spec.selector.matchLabels[app]", "wildcard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := requestAuthn(t, tt.spec)
			var oe *model.ObjectError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, model.KindRequestAuthentication, oe.Kind)
			assert.Equal(t, tt.field, oe.Field)
			assert.Contains(t, oe.Message, tt.msg)
		})
	}
}
