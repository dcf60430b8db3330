package config

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestInjectDefaultsAreIstiods(t *testing.T) {
	s, err := Parse(nil, env())
	require.NoError(t, err)
	in := s.Inject
	assert.Equal(t, ":15017", in.Address)
	assert.True(t, in.InjectorEnabled())
	assert.Equal(t, NativeSidecarsAuto, in.NativeSidecars, "istio's ENABLE_NATIVE_SIDECARS default")
	assert.Equal(t, DefaultProxyImage, in.ProxyImage)
	assert.Equal(t, FailClosed, in.FailurePolicy)
	assert.Equal(t, "Kubernetes", in.ClusterID)
	assert.True(t, in.RewriteAppProbes)
	assert.False(t, in.CNI)
	assert.Equal(t, "istio-sidecar-injector", in.WebhookConfig("istio-system"))
	assert.Equal(t, "istio-sidecar-injector-mesh", in.WebhookConfig("mesh"), "as istio's chart outside istio-system")
	assert.Equal(t, "istiod.istio-system.svc:15012", in.Discovery("istio-system", ""))
}

func TestInjectFromIstiodsEnvironment(t *testing.T) {
	s, err := Parse([]string{"--cni", "--proxy-image", "reg.bank/istio/proxyv2:1.29.6"}, env(
		"ENABLE_NATIVE_SIDECARS", "true", "REVISION", "canary", "CLUSTER_ID", "dc1", "MESHD_INJECTOR_ADDRESS", "off"))
	require.NoError(t, err)
	in := s.Inject
	assert.Equal(t, NativeSidecarsTrue, in.NativeSidecars)
	assert.True(t, in.CNI)
	assert.Equal(t, "reg.bank/istio/proxyv2:1.29.6", in.ProxyImage)
	assert.Equal(t, "dc1", in.ClusterID)
	assert.False(t, in.InjectorEnabled())
	assert.Equal(t, "istio-sidecar-injector-canary", in.WebhookConfig("istio-system"))
	assert.Equal(t, "istio-sidecar-injector-canary-mesh", in.WebhookConfig("mesh"))
	assert.Equal(t, "istiod-canary.ns.svc:15012", in.Discovery("ns", ""))
	assert.Equal(t, "mesh.example:15012", in.Discovery("ns", "mesh.example:15012"), "the mesh config's default")

	s, err = Parse([]string{"--injector-discovery-address", "meshd.ns.svc:15012"}, env("INJECTION_WEBHOOK_CONFIG_NAME", "istio-sidecar-injector-istio-system"))
	require.NoError(t, err)
	assert.Equal(t, "meshd.ns.svc:15012", s.Inject.Discovery("ns", "mesh.example:15012"), "the flag wins")
	assert.Equal(t, "istio-sidecar-injector-istio-system", s.Inject.WebhookConfig("mesh"))
}

func TestInjectRefusals(t *testing.T) {
	for name, c := range map[string]struct {
		args []string
		env  []string
		want string
	}{
		"native sidecars":   {env: []string{"ENABLE_NATIVE_SIDECARS", "yes"}, want: "ENABLE_NATIVE_SIDECARS"},
		"failure policy":    {args: []string{"--injector-failure-policy", "ignore"}, want: "want closed or open"},
		"empty proxy image": {args: []string{"--proxy-image", ""}, want: "--proxy-image"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(c.args, env(c.env...))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
}
