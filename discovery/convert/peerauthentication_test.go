package convert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	security "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"

	"github.com/meshd/meshd/internal/model"
)

// peerAuthn converts a PeerAuthentication spec written in YAML.
func peerAuthn(t *testing.T, spec string) (*model.Config, error) {
	t.Helper()
	o := &securityv1.PeerAuthentication{ObjectMeta: *testMeta.DeepCopy()}
	specFromYAML(t, spec, &o.Spec)
	return PeerAuthentication(o)
}

func TestPeerAuthenticationValid(t *testing.T) {
	for _, spec := range []string{
		`{}`,                                    // namespace-wide UNSET: inherits
		`{mtls: {mode: STRICT}}`,                // namespace-wide (mesh-wide in the root namespace)
		`{selector: {}, mtls: {mode: DISABLE}}`, // no labels: namespace-wide, istiod only warns
		`{selector: {matchLabels: {app: a}}, mtls: {mode: DISABLE}, portLevelMtls: {"8080": {mode: STRICT}, "9090": {}}}`,
	} {
		cfg, err := peerAuthn(t, spec)
		require.NoError(t, err, spec)
		assert.Equal(t, model.KindPeerAuthentication, cfg.Kind)
		assert.IsType(t, &security.PeerAuthentication{}, cfg.Spec)
		assert.Equal(t, "shop", cfg.Namespace)
		assert.Equal(t, testMeta.CreationTimestamp.Time, cfg.CreatedAt)
	}
}

func TestPeerAuthenticationErrors(t *testing.T) {
	tests := []struct {
		name, spec, field, msg string
	}{
		{"port level without selector", `{portLevelMtls: {"8080": {mode: STRICT}}}`,
			"spec.portLevelMtls", "requires a selector"},
		{"port level with empty selector", `{selector: {}, portLevelMtls: {"8080": {mode: STRICT}}}`,
			"spec.portLevelMtls", "namespace-wide PeerAuthentication cannot set port-level mTLS"},
		{"port zero", `{selector: {matchLabels: {app: a}}, portLevelMtls: {"0": {mode: STRICT}}}`,
			"spec.portLevelMtls[0]", "out of range 1-65535"},
		{"port too high", `{selector: {matchLabels: {app: a}}, portLevelMtls: {"80": {}, "70000": {mode: STRICT}}}`,
			"spec.portLevelMtls[70000]", "70000 is out of range"},
		{"unknown mode", `{mtls: {mode: 7}}`, "spec.mtls.mode", "unknown mode 7"},
		{"unknown port mode", `{selector: {matchLabels: {app: a}}, portLevelMtls: {"8080": {mode: 9}}}`,
			"spec.portLevelMtls[8080].mode", "unknown mode 9"},
		{"empty label key", `{selector: {matchLabels: {"": a}}}`, "spec.selector.matchLabels", "empty key"},
		{"wildcard label", `{selector: {matchLabels: {app: "web-*"}}}`, "spec.selector.matchLabels[app]", "wildcard"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := peerAuthn(t, tt.spec)
			var oe *model.ObjectError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, model.KindPeerAuthentication, oe.Kind)
			assert.Equal(t, "shop", oe.Namespace)
			assert.Equal(t, "obj", oe.Name)
			assert.Equal(t, tt.field, oe.Field)
			assert.Contains(t, oe.Message, tt.msg)
		})
	}
}

func TestObjectPeerAuthentication(t *testing.T) {
	o := &securityv1.PeerAuthentication{ObjectMeta: *testMeta.DeepCopy()}
	o.Spec.Mtls = &security.PeerAuthentication_MutualTLS{Mode: security.PeerAuthentication_MutualTLS_STRICT}
	kind, v, err := Object(o, "cluster.local")
	require.NoError(t, err)
	assert.Equal(t, model.KindPeerAuthentication, kind)
	assert.Equal(t, security.PeerAuthentication_MutualTLS_STRICT, v.(*model.Config).Spec.(*security.PeerAuthentication).GetMtls().GetMode())

	_, err = PeerAuthentication(nil)
	require.Error(t, err)
}
