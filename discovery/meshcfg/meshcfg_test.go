package meshcfg

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	meshconfig "istio.io/api/mesh/v1alpha1"

	"github.com/meshd/meshd/internal/model"
)

func TestParse(t *testing.T) {
	cfg, warning, err := Parse([]byte(`
rootNamespace: mesh-root
discoverySelectors:
- matchLabels: {mesh: enabled}
outboundTrafficPolicy: {mode: REGISTRY_ONLY}
defaultServiceExportTo: ["."]
defaultVirtualServiceExportTo: ["*"]
defaultDestinationRuleExportTo: ["."]
accessLogFile: /dev/stdout
accessLogEncoding: JSON
extensionProviders:
- name: als
  envoyHttpAls: {service: als.observability.svc.cluster.local, port: 9000}
- name: file
  envoyFileAccessLog: {path: /dev/stdout}
defaultConfig:
  holdApplicationUntilProxyStarts: true
`))
	require.NoError(t, err)
	assert.Empty(t, warning)
	assert.Equal(t, "mesh-root", cfg.GetRootNamespace())
	assert.Equal(t, "enabled", cfg.GetDiscoverySelectors()[0].GetMatchLabels()["mesh"])
	assert.Equal(t, meshconfig.MeshConfig_OutboundTrafficPolicy_REGISTRY_ONLY, cfg.GetOutboundTrafficPolicy().GetMode())
	assert.Equal(t, []string{"."}, cfg.GetDefaultServiceExportTo())
	assert.Equal(t, meshconfig.MeshConfig_JSON, cfg.GetAccessLogEncoding())
	require.Len(t, cfg.GetExtensionProviders(), 2)
	assert.Equal(t, "als.observability.svc.cluster.local", cfg.GetExtensionProviders()[0].GetEnvoyHttpAls().GetService())
	assert.True(t, cfg.GetDefaultConfig().GetHoldApplicationUntilProxyStarts().GetValue())
}

func TestParseToleratesUnknownFieldsAndDefaults(t *testing.T) {
	cfg, warning, err := Parse([]byte("rootNamespace: \"\"\nsomethingNew: 3\n"))
	require.NoError(t, err)
	assert.Contains(t, warning, "somethingNew")
	assert.Equal(t, "istio-system", cfg.GetRootNamespace())
	assert.Equal(t, meshconfig.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY, cfg.GetOutboundTrafficPolicy().GetMode())

	cfg, _, err = Parse(nil)
	require.NoError(t, err)
	assert.Equal(t, model.DefaultMeshConfig().GetRootNamespace(), cfg.GetRootNamespace())

	_, _, err = Parse([]byte("rootNamespace: [unclosed"))
	require.Error(t, err)
	_, _, err = Parse([]byte("outboundTrafficPolicy: {mode: SOMETIMES}"))
	require.Error(t, err, "a known field with a bad value is an error, not a warning")
}
