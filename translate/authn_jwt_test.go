package translate_test

import (
	"testing"
	"time"

	jwtauthn "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/jwt_authn/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	security "istio.io/api/security/v1beta1"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

const testKeys = `{"keys":[{"kty":"RSA","alg":"RS256","kid":"test-1","e":"AQAB","n":"wg0IAfIXv2DQBeZ8AufcKb5OClyve5abnLgqwOtsR1cXNyfIY93DCiESGfRLNoxG6huvdJ7_jlcRJt3MEyIJaEwl70172TT0dRqhn52Hh7eSpNuOB1vpVKBCCcPSTeKdYRgsGvCKmiPafevn3UhxH2JEUyo_4GVIXWhcPig1uhNP5-lThax4eE0EXCAuQiW8ntRxjk2yJgIL6Su99lft631t-4ddJ6vbsFB6NtCehs3qaU24019cqtpr0-dWlFOkzd6tBuj_Eeg3W_O-HES4kisL1sObXalx6Xz7GuCVDxsi0ISW1eSAMEkg84jQ-ZSSYVgWUO2HcdHM-OmMcyeBEw"}]}`

// inboundHTTPFilters returns the HTTP filter names and the jwt_authn
// config of virtualInbound's chain for port (nil: no jwt_authn).
func inboundHTTPFilters(t *testing.T, out *translate.Output, port uint32) ([]string, *jwtauthn.JwtAuthentication) {
	t.Helper()
	for _, l := range out.Listeners {
		if l.Name != translate.VirtualInboundListener {
			continue
		}
		for _, fc := range l.FilterChains {
			if fc.GetFilterChainMatch().GetDestinationPort().GetValue() != port {
				continue
			}
			var names []string
			var cfg *jwtauthn.JwtAuthentication
			for _, f := range fc.Filters {
				names = append(names, f.Name)
				if f.Name != "envoy.filters.network.http_connection_manager" {
					continue
				}
				m := &hcm.HttpConnectionManager{}
				require.NoError(t, f.GetTypedConfig().UnmarshalTo(m))
				names = names[:len(names)-1]
				for _, hf := range m.HttpFilters {
					names = append(names, hf.Name)
					if hf.Name == "envoy.filters.http.jwt_authn" {
						cfg = &jwtauthn.JwtAuthentication{}
						require.NoError(t, hf.GetTypedConfig().UnmarshalTo(cfg))
					}
				}
			}
			return names, cfg
		}
	}
	t.Fatalf("no chain for port %d", port)
	return nil, nil
}

// TestRequestAuthnKeySets: a jwksUri's provider gets the fail-closed key
// until meshd has fetched the key set, then the key set (a new Output);
// a failed refresh keeps the last keys and is reported; a failure with no
// keys fails closed and is reported. jwt_authn comes before the RBAC
// filters on HTTP chains and is absent from TCP chains.
func TestRequestAuthnKeySets(t *testing.T) {
	store := loadManifests(t, paMesh)
	const uri = "https://login.example/jwks"
	ra := &model.Config{Kind: model.KindRequestAuthentication, Namespace: "shop", Name: "login",
		CreatedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC),
		Spec:      &security.RequestAuthentication{JwtRules: []*security.JWTRule{{Issuer: "https://login.example", JwksUri: uri}}}}
	store.Apply([]model.Change{{Kind: model.KindRequestAuthentication, Namespace: "shop", Name: "login", Object: ra}})
	apply(t, store, authzPolicy("shop", "p", nil, security.AuthorizationPolicy_ALLOW, fromPrincipal("cluster.local/ns/a/sa/b")))
	scope := paScope(t, "sidecar|envoy|shop|app=reviews,version=v1|agent")
	build := func() (*translate.Index, *translate.Output, string) {
		x := translate.NewIndex(store.Current(), translate.Options{})
		out := translate.Build(x, scope)
		require.NoError(t, translate.Validate(out))
		names, cfg := inboundHTTPFilters(t, out, 8080)
		require.NotNil(t, cfg, "jwt_authn on the HTTP chain")
		assert.Equal(t, []string{"envoy.filters.http.jwt_authn", "envoy.filters.http.rbac"}, names[:2], "authentication before authorization")
		tcp, tcpJWT := inboundHTTPFilters(t, out, 9191)
		assert.Nil(t, tcpJWT)
		assert.NotContains(t, tcp, "envoy.filters.http.jwt_authn")
		return x, out, cfg.Providers["origins-0"].GetLocalJwks().GetInlineString()
	}
	x, pending, keys := build()
	assert.Contains(t, keys, "meshd-fail-closed", "not fetched yet: fail closed")
	assert.Empty(t, x.Errors(), "a fetch under way is not an error")

	setJWKS := func(j *model.JWKS) {
		store.Apply([]model.Change{{Kind: model.KindJWKS, Name: model.JWKSName(uri, ""), Object: j}})
	}
	setJWKS(&model.JWKS{URI: uri, Keys: testKeys, Fetched: time.Now()})
	x, fetched, keys := build()
	assert.Equal(t, testKeys, keys)
	assert.Empty(t, x.Errors())
	assert.NotSame(t, pending, fetched, "new keys make a new Output")

	setJWKS(&model.JWKS{URI: uri, Keys: testKeys, Err: "status 503", Fetched: time.Now()})
	x, _, keys = build()
	assert.Equal(t, testKeys, keys, "a failed refresh keeps the last keys")
	require.Len(t, x.Errors(), 1)
	assert.Equal(t, "spec.jwtRules[0].jwksUri", x.Errors()[0].Field)
	assert.Contains(t, x.Errors()[0].Message, "is still used")

	setJWKS(&model.JWKS{URI: uri, Err: "connection refused"})
	x, _, keys = build()
	assert.Contains(t, keys, "meshd-fail-closed")
	require.Len(t, x.Errors(), 1)
	assert.Contains(t, x.Errors()[0].Message, "connection refused: every token of issuer https://login.example is rejected")
	assert.Contains(t, x.Errors()[0].Message, "(fail closed)")

	e := translate.ExplainAuthz(x, scope)
	require.Len(t, e.RequestAuthentications, 1)
	assert.Contains(t, string(e.JWTAuthn), "origins-0")
	require.Len(t, e.Errors, 1, "the explanation carries the JWKS error")
}
