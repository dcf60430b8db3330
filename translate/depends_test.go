package translate_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// depNamespaces are the namespaces of the dependency tests, each with a
// service "app" (app.<ns>.svc.cluster.local).
var depNamespaces = []string{"a", "b", "c"}

// depScopes are a sidecar per namespace, one in the unscoped namespace u,
// and a router.
var depScopes = []string{"sidecar|envoy|a|app=x", "sidecar|envoy|b|app=x", "sidecar|envoy|c|app=x",
	"sidecar|envoy|u|app=x", "router|envoy|istio-system|istio=ingressgateway"}

// scopedSidecar is the bank's Sidecar: its namespace and istio-system.
const scopedSidecar = "  egress:\n  - hosts: [\"./*\", \"istio-system/*\"]\n"

// depBase is the services of depNamespaces and u, the Sidecar of each of
// depNamespaces (when scoped) and extra.
func depBase(scoped bool, extra string) string {
	s := svcYAML("u", "app", "")
	for _, ns := range depNamespaces {
		s += svcYAML(ns, "app", "")
		if scoped {
			s += sidecarYAML(ns, "default", "2026-01-01T00:00:00Z", scopedSidecar)
		}
	}
	return s + extra
}

func reviewsVS(ns, host, dest string) string {
	return vsYAML(ns, "routes", "2026-01-01T00:00:00Z", "  hosts: ["+host+"]\n  http:\n  - route:\n    - destination: {host: "+dest+"}\n")
}

// depChange loads base, applies the objects of changed (replacing those of
// the same kind and name) and removes removed ("Kind/ns/name"), and
// returns the summary of the change with both Indexes.
func depChange(t *testing.T, base, changed string, removed ...string) (*translate.Dependencies, *translate.Index, *translate.Index) {
	t.Helper()
	store := loadManifests(t, base)
	prev := translate.NewIndex(store.Current(), translate.Options{})
	var changes []model.Change
	if changed != "" {
		other := loadManifests(t, changed).Current()
		for _, k := range []model.Kind{model.KindVirtualService, model.KindDestinationRule, model.KindServiceEntry,
			model.KindSidecar, model.KindGateway, model.KindPeerAuthentication} {
			for _, c := range other.Configs(k) {
				changes = append(changes, model.Change{Kind: k, Namespace: c.Namespace, Name: c.Name, Object: c})
			}
		}
	}
	for _, r := range removed {
		var k, ns, name string
		_, err := fmt.Sscanf(r, "%s %s %s", &k, &ns, &name)
		require.NoError(t, err)
		changes = append(changes, model.Change{Kind: model.Kind(k), Namespace: ns, Name: name})
	}
	require.NotEmpty(t, changes)
	x := translate.NewIndexFrom(prev, store.Apply(changes), translate.Options{})
	return translate.Changes(prev, x), prev, x
}

// affected lists the depScopes the change affects, and checks that every
// other one translates to the very same config from both Indexes.
func affected(t *testing.T, d *translate.Dependencies, prev, x *translate.Index) []string {
	t.Helper()
	var out []string
	for _, key := range depScopes {
		sc := paScope(t, key)
		if ok, reason := d.Affects(sc); ok {
			assert.NotEmpty(t, reason, key)
			out = append(out, key)
			continue
		}
		a, b := translate.Build(prev, sc), translate.Build(x, sc)
		assert.True(t, sameConfig(a, b), "%s is said unaffected but its config changed", key)
	}
	return out
}

// sameConfig compares what is served per scope (EDS is mesh-wide).
func sameConfig(a, b *translate.Output) bool {
	eq := func(x, y []proto.Message) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if !proto.Equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return eq(msgs(a.Listeners), msgs(b.Listeners)) && eq(msgs(a.Routes), msgs(b.Routes)) &&
		eq(msgs(a.Clusters), msgs(b.Clusters)) && eq(msgs(a.Secrets), msgs(b.Secrets))
}

func msgs[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

const (
	scopeA      = "sidecar|envoy|a|app=x"
	scopeB      = "sidecar|envoy|b|app=x"
	scopeC      = "sidecar|envoy|c|app=x"
	scopeU      = "sidecar|envoy|u|app=x"
	scopeRouter = "router|envoy|istio-system|istio=ingressgateway"
)

// A VirtualService change in namespace a, every namespace scoped to
// "./*" and istio-system: only a's scopes (and the unscoped one) see it.
func TestDependsVirtualServiceScoped(t *testing.T) {
	base := depBase(true, reviewsVS("a", "app", "app"))
	d, prev, x := depChange(t, base, vsYAML("a", "routes", "2026-01-01T00:00:00Z",
		"  hosts: [app]\n  http:\n  - route:\n    - destination: {host: app}\n    timeout: 3s\n"))
	assert.Equal(t, []string{scopeA, scopeU}, affected(t, d, prev, x))
	assert.Equal(t, []string{"VirtualService a/routes"}, d.Changed())

	// Created, and deleted: the versions before count as well as after.
	d, prev, x = depChange(t, depBase(true, ""), reviewsVS("b", "app", "app"))
	assert.Equal(t, []string{scopeB, scopeU}, affected(t, d, prev, x))
	d, prev, x = depChange(t, base, "", "VirtualService a routes")
	assert.Equal(t, []string{scopeA, scopeU}, affected(t, d, prev, x))

	// Moved to another host: both hosts' viewers are affected; and a
	// VirtualService exported to nobody but its namespace is seen there only.
	d, prev, x = depChange(t, depBase(false, reviewsVS("a", "app", "app")),
		vsYAML("a", "routes", "2026-01-01T00:00:00Z", "  hosts: [app]\n  exportTo: [\".\"]\n  http:\n  - route:\n    - destination: {host: app}\n    timeout: 3s\n"))
	assert.Equal(t, []string{scopeA, scopeB, scopeC, scopeU}, affected(t, d, prev, x), "exportTo before counts")
}

// A host every unscoped sidecar sees: a change affects all of them, and no
// router (a mesh VirtualService).
func TestDependsMeshWideHost(t *testing.T) {
	d, prev, x := depChange(t, depBase(false, reviewsVS("a", "app", "app")),
		vsYAML("a", "routes", "2026-01-01T00:00:00Z", "  hosts: [app]\n  http:\n  - route:\n    - destination: {host: app}\n    timeout: 3s\n"))
	assert.Equal(t, []string{scopeA, scopeB, scopeC, scopeU}, affected(t, d, prev, x))

	// Bound to a gateway: routers only.
	gwVS := vsYAML("a", "ingress", "2026-01-01T00:00:00Z", "  hosts: [\"shop.example.com\"]\n  gateways: [istio-system/gw]\n  http:\n  - route:\n    - destination: {host: app}\n")
	d, prev, x = depChange(t, depBase(false, ""), gwVS)
	assert.Equal(t, []string{scopeRouter}, affected(t, d, prev, x))
}

// DestinationRule: a subset change reaches every scope referring to the
// host; a traffic policy change only the scopes the rule can apply to.
func TestDependsDestinationRule(t *testing.T) {
	drYAML := func(ns, subset string, maxConn int) string {
		return "---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: app, namespace: " + ns +
			", creationTimestamp: \"2026-01-01T00:00:00Z\"}\nspec:\n  host: app.a.svc.cluster.local\n  subsets:\n  - name: " + subset +
			"\n    labels: {version: " + subset + "}\n  trafficPolicy:\n    connectionPool:\n      tcp: {maxConnections: " + fmt.Sprint(maxConn) + "}\n"
	}
	// Scoped: a's host is seen in a (and by the unscoped sidecar).
	d, prev, x := depChange(t, depBase(true, drYAML("a", "v1", 10)), drYAML("a", "v2", 10))
	assert.Equal(t, []string{scopeA, scopeU, scopeRouter}, affected(t, d, prev, x))

	// Unscoped: a subset change reaches everyone, wherever the rule lives.
	d, prev, x = depChange(t, depBase(false, drYAML("b", "v1", 10)), drYAML("b", "v2", 10))
	assert.Equal(t, []string{scopeA, scopeB, scopeC, scopeU, scopeRouter}, affected(t, d, prev, x))
	// A traffic policy change of a rule in b (not the service's namespace)
	// applies to b's proxies alone (a bulkhead per calling namespace).
	d, prev, x = depChange(t, depBase(false, drYAML("b", "v1", 10)), drYAML("b", "v1", 20))
	assert.Equal(t, []string{scopeB, scopeRouter}, affected(t, d, prev, x))
	// In the service's namespace: to everyone who sees the host.
	d, prev, x = depChange(t, depBase(false, drYAML("a", "v1", 10)), drYAML("a", "v1", 20))
	assert.Equal(t, []string{scopeA, scopeB, scopeC, scopeU, scopeRouter}, affected(t, d, prev, x))
}

// ServiceEntry: the scopes that see its hosts, before and after.
func TestDependsServiceEntry(t *testing.T) {
	base := depBase(true, "")
	d, prev, x := depChange(t, base, seYAML("a", "bank", "core.bank.example", ""))
	assert.Equal(t, []string{scopeA, scopeU, scopeRouter}, affected(t, d, prev, x), "created in a: seen in a")
	d, prev, x = depChange(t, base+seYAML("a", "bank", "core.bank.example", ""), seYAML("a", "bank", "core.bank.example", "  exportTo: [\".\"]\n"))
	assert.Equal(t, []string{scopeA, scopeU, scopeRouter}, affected(t, d, prev, x))
	d, prev, x = depChange(t, base+seYAML("a", "bank", "core.bank.example", ""), "", "ServiceEntry a bank")
	assert.Equal(t, []string{scopeA, scopeU, scopeRouter}, affected(t, d, prev, x), "deleted")
	// A workloadSelector selects workloads (inbound config): everyone.
	d, prev, x = depChange(t, base, seYAML("a", "bank", "core.bank.example", "  workloadSelector: {labels: {app: x}}\n"))
	assert.Len(t, affected(t, d, prev, x), len(depScopes))
}

// Sidecar: the scopes of its namespace; in the root namespace, everyone.
func TestDependsSidecar(t *testing.T) {
	base := depBase(true, reviewsVS("a", "app", "app"))
	d, prev, x := depChange(t, base, sidecarYAML("b", "default", "2026-01-01T00:00:00Z", "  egress:\n  - hosts: [\"*/*\"]\n"))
	assert.Equal(t, []string{scopeB}, affected(t, d, prev, x))
	d, prev, x = depChange(t, base, "", "Sidecar c default")
	assert.Equal(t, []string{scopeC}, affected(t, d, prev, x))
	d, prev, x = depChange(t, base, sidecarYAML("istio-system", "default", "2026-01-01T00:00:00Z", scopedSidecar))
	assert.Len(t, affected(t, d, prev, x), len(depScopes))
	assert.Contains(t, d.All(), "root namespace")
}

// Kinds not tracked per host affect every scope.
func TestDependsUnsureKinds(t *testing.T) {
	base := depBase(true, "")
	gw := gwYAML("istio-system", "gw", "2026-01-01T00:00:00Z", "istio: ingressgateway",
		"  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n")
	pa := "---\napiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: default, namespace: b}\nspec:\n  mtls: {mode: STRICT}\n"
	for name, changed := range map[string]string{"Gateway": gw, "PeerAuthentication": pa} {
		d, prev, x := depChange(t, base, changed)
		assert.Len(t, affected(t, d, prev, x), len(depScopes), name)
		assert.Equal(t, name+" changed", d.All())
	}
	assert.Equal(t, "first push", translate.Changes(nil, translate.NewIndex(loadManifests(t, base).Current(), translate.Options{})).All())
}
