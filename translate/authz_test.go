package translate_test

import (
	"testing"
	"time"

	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbactcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// authzPolicy is an AuthorizationPolicy of ns selecting labels (nil: the
// whole namespace).
func authzPolicy(ns, name string, labels map[string]string, action security.AuthorizationPolicy_Action, rules ...*security.Rule) *model.Config {
	spec := &security.AuthorizationPolicy{Action: action, Rules: rules}
	if labels != nil {
		spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: labels}
	}
	return &model.Config{Kind: model.KindAuthorizationPolicy, Namespace: ns, Name: name,
		CreatedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Spec: spec}
}

// fromPrincipal is a rule admitting one principal.
func fromPrincipal(p string) *security.Rule {
	return &security.Rule{From: []*security.Rule_From{{Source: &security.Source{Principals: []string{p}}}}}
}

// inboundRBAC returns the RBAC rules of virtualInbound's chains for port:
// the HTTP filters' (HTTP ports) or the network filters' (TCP), in order.
func inboundRBAC(t *testing.T, out *translate.Output, port uint32) []*rbacpb.RBAC {
	t.Helper()
	for _, l := range out.Listeners {
		if l.Name != translate.VirtualInboundListener {
			continue
		}
		for _, fc := range l.FilterChains {
			if fc.GetFilterChainMatch().GetDestinationPort().GetValue() != port {
				continue
			}
			var rules []*rbacpb.RBAC
			for _, f := range fc.Filters {
				switch f.Name {
				case "envoy.filters.network.rbac":
					r := &rbactcp.RBAC{}
					require.NoError(t, f.GetTypedConfig().UnmarshalTo(r))
					assert.Equal(t, "tcp.", r.StatPrefix)
					rules = append(rules, r.Rules)
				case "envoy.filters.network.http_connection_manager":
					m := &hcm.HttpConnectionManager{}
					require.NoError(t, f.GetTypedConfig().UnmarshalTo(m))
					for i, hf := range m.HttpFilters {
						if hf.Name == "envoy.filters.http.rbac" {
							r := &rbachttp.RBAC{}
							require.NoError(t, hf.GetTypedConfig().UnmarshalTo(r))
							rules = append(rules, r.Rules)
						} else {
							assert.Equal(t, len(m.HttpFilters)-1, i, "the router is last, after the RBAC filters")
						}
					}
				}
			}
			return rules
		}
	}
	t.Fatalf("no chain for port %d", port)
	return nil
}

func apply(t *testing.T, store *model.Store, cfgs ...*model.Config) *model.Snapshot {
	t.Helper()
	var changes []model.Change
	for _, c := range cfgs {
		changes = append(changes, model.Change{Kind: model.KindAuthorizationPolicy, Namespace: c.Namespace, Name: c.Name, Object: c})
	}
	return store.Apply(changes)
}

// TestAuthzScoping: root-namespace policies apply mesh-wide (narrowed by
// their selector), a namespace's to its workloads, selectors narrow; and
// workloads under different policies never share an Output.
func TestAuthzScoping(t *testing.T) {
	store := loadManifests(t, paMesh)
	x := translate.NewIndex(apply(t, store,
		authzPolicy("istio-system", "mesh", nil, security.AuthorizationPolicy_DENY, &security.Rule{}),
		authzPolicy("istio-system", "mesh-v2", map[string]string{"version": "v2"}, security.AuthorizationPolicy_ALLOW),
		authzPolicy("shop", "v1", map[string]string{"version": "v1"}, security.AuthorizationPolicy_ALLOW, fromPrincipal("cluster.local/ns/a/sa/b")),
		authzPolicy("loan", "other", nil, security.AuthorizationPolicy_ALLOW),
	), translate.Options{})
	v1 := translate.Build(x, paScope(t, "sidecar|envoy|shop|app=reviews,version=v1|agent"))
	v2 := translate.Build(x, paScope(t, "sidecar|envoy|shop|app=reviews,version=v2|agent"))
	require.NoError(t, translate.ValidateIn(x, v1))
	require.NoError(t, translate.ValidateIn(x, v2))
	assert.NotSame(t, v1, v2, "different policies, different Outputs")

	r1 := inboundRBAC(t, v1, 8080)
	require.Len(t, r1, 2, "DENY, then ALLOW")
	assert.Equal(t, rbacpb.RBAC_DENY, r1[0].Action)
	assert.Contains(t, r1[0].Policies, "ns[istio-system]-policy[mesh]-rule[0]")
	assert.Equal(t, rbacpb.RBAC_ALLOW, r1[1].Action)
	assert.Equal(t, []string{"ns[shop]-policy[v1]-rule[0]"}, keys(r1[1].Policies))
	assert.Equal(t, "spiffe://cluster.local/ns/a/sa/b",
		r1[1].Policies["ns[shop]-policy[v1]-rule[0]"].Principals[0].GetAndIds().Ids[0].GetOrIds().Ids[0].GetAuthenticated().GetPrincipalName().GetExact())

	r2 := inboundRBAC(t, v2, 9191)
	require.Len(t, r2, 2)
	assert.Equal(t, []string{"ns[istio-system]-policy[mesh-v2]-rule[0]"}, keys(r2[1].Policies), "the root's selector matches v2 in any namespace")
}

// TestAuthzTCPHTTPOnlyFields: on a TCP port an ALLOW rule with an HTTP-only
// field is skipped (allowing nothing), and a DENY rule loses the field
// (denying more), as istiod.
func TestAuthzTCPHTTPOnlyFields(t *testing.T) {
	store := loadManifests(t, paMesh)
	get := &security.Rule{To: []*security.Rule_To{{Operation: &security.Operation{Methods: []string{"GET"}}}}}
	x := translate.NewIndex(apply(t, store,
		authzPolicy("shop", "allow-get", nil, security.AuthorizationPolicy_ALLOW, get),
		authzPolicy("shop", "deny-get", nil, security.AuthorizationPolicy_DENY, get),
	), translate.Options{})
	out := translate.Build(x, paScope(t, "sidecar|envoy|shop|app=reviews,version=v1|agent"))
	tcp := inboundRBAC(t, out, 9191)
	require.Len(t, tcp, 2)
	assert.Empty(t, tcp[1].Policies, "ALLOW rule skipped on TCP: nothing is allowed")
	deny := tcp[0].Policies["ns[shop]-policy[deny-get]-rule[0]"]
	require.NotNil(t, deny)
	assert.True(t, deny.Permissions[0].GetAndRules().Rules[0].GetAny(), "DENY rule without its HTTP-only field matches every connection")
	http := inboundRBAC(t, out, 8080)
	assert.Len(t, http[1].Policies, 1)
}

// TestAuthzChangeRebuilds: an Index built from the previous one follows
// a policy added, changed and deleted.
func TestAuthzChangeRebuilds(t *testing.T) {
	store := loadManifests(t, paMesh)
	scope := paScope(t, "sidecar|envoy|shop|app=reviews,version=v1|agent")
	x0 := translate.NewIndexFrom(nil, store.Current(), translate.Options{})
	assert.Empty(t, inboundRBAC(t, translate.Build(x0, scope), 8080))
	x1 := translate.NewIndexFrom(x0, apply(t, store, authzPolicy("shop", "p", nil, security.AuthorizationPolicy_ALLOW,
		fromPrincipal("cluster.local/ns/a/sa/b"))), translate.Options{})
	assert.Len(t, inboundRBAC(t, translate.Build(x1, scope), 8080), 1)
	x2 := translate.NewIndexFrom(x1, apply(t, store, authzPolicy("shop", "p", nil, security.AuthorizationPolicy_DENY,
		fromPrincipal("cluster.local/ns/a/sa/b"))), translate.Options{})
	r := inboundRBAC(t, translate.Build(x2, scope), 8080)
	require.Len(t, r, 1)
	assert.Equal(t, rbacpb.RBAC_DENY, r[0].Action, "a changed spec is a new Output")
	x3 := translate.NewIndexFrom(x2, store.Apply([]model.Change{{Kind: model.KindAuthorizationPolicy, Namespace: "shop", Name: "p"}}),
		translate.Options{})
	assert.Empty(t, inboundRBAC(t, translate.Build(x3, scope), 8080))
}

// TestAuthzGatewayUntouched: gateways get no RBAC (sidecars only for now).
func TestAuthzGatewayUntouched(t *testing.T) {
	store := loadManifests(t, paMesh)
	x := translate.NewIndex(apply(t, store, authzPolicy("istio-system", "all", nil, security.AuthorizationPolicy_ALLOW)), translate.Options{})
	out := translate.Build(x, paScope(t, "router|envoy|istio-system|istio=gw"))
	for _, l := range out.Listeners {
		for _, fc := range l.FilterChains {
			for _, f := range fc.Filters {
				assert.NotEqual(t, "envoy.filters.network.rbac", f.Name)
			}
		}
	}
}

func keys(m map[string]*rbacpb.Policy) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestExplainAuthz: the policies in force and their RBAC, with the
// reported problems; nil for gateways.
func TestExplainAuthz(t *testing.T) {
	store := loadManifests(t, paMesh)
	x := translate.NewIndex(apply(t, store,
		authzPolicy("shop", "p", nil, security.AuthorizationPolicy_ALLOW, fromPrincipal("cluster.local/ns/a/sa/b")),
		authzPolicy("shop", "audit", nil, security.AuthorizationPolicy_AUDIT),
		customPolicy("shop", "ext", "no-such-provider"),
	), translate.Options{})
	e := translate.ExplainAuthz(x, paScope(t, "sidecar|envoy|shop|app=reviews,version=v1|agent"))
	require.NotNil(t, e)
	require.Len(t, e.Policies, 3)
	require.Len(t, e.HTTP, 3, "CUSTOM (an unknown provider: its rules deny), AUDIT (LOG), then ALLOW")
	assert.Contains(t, string(e.HTTP[0]), `"action":"DENY"`)
	assert.Contains(t, string(e.HTTP[0]), "istio-ext-authz-no-such-provider-ns[shop]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action")
	assert.Contains(t, string(e.HTTP[1]), `"action":"LOG"`)
	assert.Contains(t, string(e.HTTP[2]), "spiffe://cluster.local/ns/a/sa/b")
	require.Len(t, e.Errors, 1)
	assert.Equal(t, "spec.provider.name", e.Errors[0].Field)
	assert.Contains(t, e.Errors[0].Message, `extension provider "no-such-provider" is not in MeshConfig extensionProviders`)
	gw := translate.ExplainAuthz(x, paScope(t, "router|envoy|shop|istio=gw"))
	require.NotNil(t, gw, "a gateway's workload is under its namespace's policies too")
	assert.Len(t, gw.Policies, 3)
	assert.Nil(t, translate.ExplainAuthz(x, paScope(t, "sidecar|grpc|shop|app=reviews")), "proxyless gRPC: no policy is applied")
}

// customPolicy is a CUSTOM policy of provider, with one empty rule.
func customPolicy(ns, name, provider string) *model.Config {
	cfg := authzPolicy(ns, name, nil, security.AuthorizationPolicy_CUSTOM, &security.Rule{})
	cfg.Spec.(*security.AuthorizationPolicy).ActionDetail = &security.AuthorizationPolicy_Provider{
		Provider: &security.AuthorizationPolicy_ExtensionProvider{Name: provider}}
	return cfg
}
