package config

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSecurityDefaultsAreIstiods(t *testing.T) {
	s, err := Parse(nil, env())
	require.NoError(t, err)
	sec := s.Security
	assert.Equal(t, ":15012", sec.SecureXDSAddress)
	assert.True(t, sec.SecureEnabled())
	assert.True(t, sec.XDSAuth)
	assert.Equal(t, CertProviderIstiod, sec.CertProvider)
	assert.Equal(t, "./etc/cacerts", sec.RootCADir)
	assert.Equal(t, 24*time.Hour, sec.DefaultWorkloadCertTTL)
	assert.Equal(t, 90*24*time.Hour, sec.MaxWorkloadCertTTL)
	assert.Equal(t, []string{"istio-ca"}, sec.Audiences())
	assert.Empty(t, sec.DebugAllowedNamespaces(), "only the istio and mesh root namespaces read every debug endpoint")
}

func TestSecurityFromIstiodsEnvironment(t *testing.T) {
	s, err := Parse(nil, env(
		"XDS_AUTH", "false", "PILOT_CERT_PROVIDER", "custom", "MAX_WORKLOAD_CERT_TTL", "48h",
		"DEFAULT_WORKLOAD_CERT_TTL", "1h", "TOKEN_AUDIENCES", "istio-ca, bank-ca", "ISTIOD_CUSTOM_HOST", "meshd.bank.internal,localhost",
		"ROOT_CA_DIR", "/etc/plugged", "DEBUG_ENDPOINT_AUTH_ALLOWED_NAMESPACES", "ops, ,monitoring"))
	require.NoError(t, err)
	sec := s.Security
	assert.False(t, sec.XDSAuth)
	assert.Equal(t, CertProviderCustom, sec.CertProvider)
	assert.Equal(t, 48*time.Hour, sec.MaxWorkloadCertTTL)
	assert.Equal(t, time.Hour, sec.DefaultWorkloadCertTTL)
	assert.Equal(t, []string{"istio-ca", "bank-ca"}, sec.Audiences())
	assert.Equal(t, []string{"meshd.bank.internal", "localhost"}, sec.CustomHosts())
	assert.Equal(t, "/etc/plugged", sec.RootCADir)
	assert.Equal(t, []string{"ops", "monitoring"}, sec.DebugAllowedNamespaces())
}

func TestDebugAllowedNamespacesFlagOverridesEnvironment(t *testing.T) {
	s, err := Parse([]string{"--debug-auth-allowed-namespaces", "sre"}, env("DEBUG_ENDPOINT_AUTH_ALLOWED_NAMESPACES", "ops"))
	require.NoError(t, err)
	assert.Equal(t, []string{"sre"}, s.Security.DebugAllowedNamespaces())
}

func TestSecurityRefusals(t *testing.T) {
	for name, c := range map[string]struct {
		args []string
		env  []string
		want string
	}{
		"node authorization":    {env: []string{"CA_TRUSTED_NODE_ACCOUNTS", "istio-system/ztunnel"}, want: "CA_TRUSTED_NODE_ACCOUNTS"},
		"unknown cert provider": {env: []string{"PILOT_CERT_PROVIDER", "kubernetes"}, want: "PILOT_CERT_PROVIDER"},
		"default over max":      {args: []string{"--default-workload-cert-ttl", "100h", "--max-workload-cert-ttl", "50h"}, want: "longer than"},
		"no audience":           {args: []string{"--token-audiences", " , "}, want: "at least one audience"},
		"both ports off":        {args: []string{"--xds-address", "off", "--secure-xds-address", "off"}, want: "both off"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Parse(c.args, env(c.env...))
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
		})
	}
	s, err := Parse([]string{"--xds-address", "off"}, env())
	require.NoError(t, err, "the plaintext port alone may be turned off")
	assert.Equal(t, Off, s.XDSAddress)
}
