package convert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	security "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"

	"github.com/meshd/meshd/internal/model"
)

// authzPolicy converts an AuthorizationPolicy spec written in YAML.
func authzPolicy(t *testing.T, spec string) (*model.Config, error) {
	t.Helper()
	o := &securityv1.AuthorizationPolicy{ObjectMeta: *testMeta.DeepCopy()}
	specFromYAML(t, spec, &o.Spec)
	return AuthorizationPolicy(o)
}

func TestAuthorizationPolicyValid(t *testing.T) {
	for _, spec := range []string{
		`{}`,
		`{action: DENY}`,
		`{selector: {matchLabels: {app: a}}, rules: [{from: [{source: {principals: ["cluster.local/ns/a/sa/b"]}}]}]}`,
		`{rules: [{to: [{operation: {paths: ["/x*"], ports: ["8080"]}}], when: [{key: source.ip, values: ["10.0.0.0/8"]}]}]}`,
		`{action: CUSTOM, provider: {name: opa}, rules: [{}]}`,
		`{action: AUDIT, rules: [{when: [{key: "request.auth.claims[iss]", values: [x]}]}]}`,
	} {
		cfg, err := authzPolicy(t, spec)
		require.NoError(t, err, spec)
		assert.Equal(t, model.KindAuthorizationPolicy, cfg.Kind)
		assert.IsType(t, &security.AuthorizationPolicy{}, cfg.Spec)
	}
}

func TestAuthorizationPolicyErrors(t *testing.T) {
	tests := []struct {
		name, spec, field, msg string
	}{
		{"empty source", `{rules: [{from: [{source: {}}]}]}`, "spec.rules[0].from[0].source", "must not be empty"},
		{"no source", `{rules: [{}, {from: [{}]}]}`, "spec.rules[1].from[0].source", "must not be empty"},
		{"empty operation", `{rules: [{to: [{operation: {}}]}]}`, "spec.rules[0].to[0].operation", "must not be empty"},
		{"bad port", `{rules: [{to: [{operation: {ports: ["http"]}}]}]}`, "spec.rules[0].to[0].operation.ports", "invalid port"},
		{"bad ip", `{rules: [{from: [{source: {ipBlocks: ["10.0.0.0/99"]}}]}]}`, "spec.rules[0].from[0].source.ipBlocks", "invalid IP"},
		{"condition without values", `{rules: [{when: [{key: source.namespace}]}]}`, "spec.rules[0].when[0]", "needs values"},
		{"custom without provider", `{action: CUSTOM}`, "spec.provider.name", "needs a provider"},
		{"provider without custom", `{provider: {name: opa}}`, "spec.provider", "only a CUSTOM"},
		{"selector and targetRefs", `{selector: {matchLabels: {app: a}}, targetRefs: [{kind: Service, name: a}]}`, "spec.targetRefs", "only one"},
		{"wildcard label", `{selector: {matchLabels: {app: "a*"}}}`, "spec.selector.matchLabels[app]", "wildcard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := authzPolicy(t, tt.spec)
			var oe *model.ObjectError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, model.KindAuthorizationPolicy, oe.Kind)
			assert.Equal(t, tt.field, oe.Field)
			assert.Contains(t, oe.Message, tt.msg)
		})
	}
}

func TestObjectAuthorizationPolicy(t *testing.T) {
	o := &securityv1.AuthorizationPolicy{ObjectMeta: *testMeta.DeepCopy()}
	o.Spec.Action = security.AuthorizationPolicy_DENY
	kind, v, err := Object(o, "cluster.local")
	require.NoError(t, err)
	assert.Equal(t, model.KindAuthorizationPolicy, kind)
	assert.Equal(t, security.AuthorizationPolicy_DENY, v.(*model.Config).Spec.(*security.AuthorizationPolicy).GetAction())
	_, err = AuthorizationPolicy(nil)
	require.Error(t, err)
}
