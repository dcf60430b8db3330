package translate_test

import (
	"slices"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	meshconfig "istio.io/api/mesh/v1alpha1"

	"github.com/meshd/meshd/discovery/meshcfg"
	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// TestCustomProviderClusterIsChecked: the ext_authz provider's cluster is
// served with a Sidecar-scoped workload's config (authz-custom), and the
// referential-integrity check fails an Output that lacks it.
func TestCustomProviderClusterIsChecked(t *testing.T) {
	store := loadStore(t, "testdata/authz-custom/in.yaml")
	x := translate.NewIndex(store.Current(), translate.Options{})
	out := translate.Build(x, paScope(t, "sidecar|envoy|shop|app=reviews,version=v1|agent"))
	const opa = "outbound|9191||opa.security.svc.cluster.local"
	require.True(t, slices.ContainsFunc(out.Clusters, func(c *cluster.Cluster) bool { return c.Name == opa }))
	require.Empty(t, translate.CheckReferences(out))

	broken := *out
	broken.Clusters = slices.DeleteFunc(slices.Clone(out.Clusters), func(c *cluster.Cluster) bool { return c.Name == opa })
	errs := translate.CheckReferences(&broken)
	require.NotEmpty(t, errs)
	assert.Contains(t, errs[0].Error(), `references missing cluster "`+opa+`"`)

	// Another workload under no CUSTOM policy gets no provider cluster.
	other := translate.Build(x, paScope(t, "sidecar|envoy|shop|app=ratings|agent"))
	assert.False(t, slices.ContainsFunc(other.Clusters, func(c *cluster.Cluster) bool { return c.Name == opa }))
}

// TestCustomTwoProvidersFailClosed: a workload under CUSTOM policies of two
// providers gets neither ext_authz, but each policy's rules as DENY
// (istiod without PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS).
func TestCustomTwoProvidersFailClosed(t *testing.T) {
	store := loadStore(t, "testdata/authz-custom/in.yaml")
	second := customPolicy("shop", "second", "opa-2")
	store.Apply([]model.Change{{Kind: model.KindAuthorizationPolicy, Namespace: "shop", Name: "second", Object: second}})
	x := translate.NewIndex(store.Current(), translate.Options{})
	e := translate.ExplainAuthz(x, paScope(t, "sidecar|envoy|shop|app=reviews,version=v1|agent"))
	require.NotNil(t, e)
	var denies int
	for _, f := range e.HTTP {
		assert.NotContains(t, string(f), "ext_authz.v3.ExtAuthz", "no provider is called")
		if strings.Contains(string(f), `"action":"DENY"`) && strings.Contains(string(f), "-deny-due-to-bad-CUSTOM-action") {
			denies++
		}
	}
	assert.Equal(t, 2, denies, "one DENY filter per provider's policies")
}

// TestCustomLegacyIncludeHeadersInCheck: a provider with only the
// deprecated includeHeadersInCheck still sends those headers to the
// authorization service (istiod's fallback).
func TestCustomLegacyIncludeHeadersInCheck(t *testing.T) {
	store := loadStore(t, "testdata/authz-custom-http/in.yaml")
	mesh := store.Current().MeshConfig()
	legacy := proto.Clone(mesh).(*meshconfig.MeshConfig)
	for _, p := range legacy.GetExtensionProviders() {
		if h := p.GetEnvoyExtAuthzHttp(); h != nil && p.GetName() == "sso" {
			h.IncludeRequestHeadersInCheck = nil
			h.IncludeHeadersInCheck = []string{"x-legacy-auth"} //nolint:staticcheck // the deprecated field under test
		}
	}
	store.Apply([]model.Change{meshcfg.Change(legacy, "test")})
	x := translate.NewIndex(store.Current(), translate.Options{})
	e := translate.ExplainAuthz(x, paScope(t, "sidecar|envoy|shop|app=reviews,version=v1|agent"))
	require.NotNil(t, e)
	var found bool
	for _, f := range e.HTTP {
		found = found || strings.Contains(string(f), `"exact":"x-legacy-auth"`)
	}
	assert.True(t, found, "the deprecated field's headers are allowed to the check: %s", e.HTTP)
}
