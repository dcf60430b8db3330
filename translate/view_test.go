package translate_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// TestScopesShareViews: sidecars of one namespace with different labels
// share their outbound resources (the same values, built once), unless a
// VirtualService's sourceLabels tells them apart; their inbound sides stay
// their own.
func TestScopesShareViews(t *testing.T) {
	withSelector := func(name string) string {
		return svcYAML("shop", name, "") + "  selector: {app: " + name + "}\n"
	}
	manifests := withSelector("cart") + withSelector("web") +
		vsYAML("shop", "cart", "2026-01-01T00:00:00Z", `  hosts: [cart]
  http:
  - match: [{sourceLabels: {app: web}}]
    route: [{destination: {host: cart}}]
    timeout: 2s
  - route: [{destination: {host: cart}}]
`)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.yaml")
	require.NoError(t, os.WriteFile(in, []byte(manifests), 0o644))
	x := translate.NewIndex(loadSnapshot(t, in), translate.Options{})
	build := func(labels string) *translate.Output {
		sc, err := model.ParseScopeKey("sidecar|envoy|shop|" + labels)
		require.NoError(t, err)
		out := translate.Build(x, sc)
		require.NoError(t, translate.ValidateIn(x, out))
		return out
	}
	listener := func(out *translate.Output, name string) any {
		for _, l := range out.Listeners {
			if l.Name == name {
				return l
			}
		}
		t.Fatalf("no listener %s", name)
		return nil
	}
	route := func(out *translate.Output, name string) any {
		for _, r := range out.Routes {
			if r.Name == name {
				return r
			}
		}
		t.Fatalf("no route %s", name)
		return nil
	}
	a, b, web := build("app=cart"), build("app=payments"), build("app=web")
	assert.Same(t, listener(a, "0.0.0.0_8080"), listener(b, "0.0.0.0_8080"), "one view: the same listener value")
	assert.Same(t, route(a, "8080"), route(b, "8080"))
	assert.NotSame(t, route(a, "8080"), route(web, "8080"), "sourceLabels app=web: another view")
	assert.Contains(t, prettyRoutes(t, web), "timeout:{seconds:2}", "web gets the sourceLabels route with its timeout")
	assert.NotContains(t, prettyRoutes(t, a), "timeout:{seconds:2}")
	assert.True(t, hasListener(a, "virtualInbound"), "cart backs a service: its inbound side")
	assert.True(t, hasListener(web, "virtualInbound"))
	assert.NotSame(t, listener(a, "virtualInbound"), listener(web, "virtualInbound"), "inbound is per scope")
}

func prettyRoutes(t *testing.T, out *translate.Output) string {
	var s string
	for _, r := range out.Routes {
		s += r.String()
	}
	return s
}

// TestTCPSourceLabelsSplitViews: a VirtualService's tcp (or tls) match with
// sourceLabels changes the outbound listener of the workloads it selects,
// so they must not share a view with the others.
func TestTCPSourceLabelsSplitViews(t *testing.T) {
	manifests := svcYAML("shop", "db", "", "{name: tcp, port: 5432}") + "  clusterIP: 10.96.0.10\n" +
		svcYAML("shop", "replica", "", "{name: tcp, port: 5432}") + "  clusterIP: 10.96.0.11\n" +
		vsYAML("shop", "db", "2026-01-01T00:00:00Z", `  hosts: [db]
  tcp:
  - match: [{sourceLabels: {app: reporting}}]
    route: [{destination: {host: replica}}]
  - route: [{destination: {host: db}}]
`)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.yaml")
	require.NoError(t, os.WriteFile(in, []byte(manifests), 0o644))
	x := translate.NewIndex(loadSnapshot(t, in), translate.Options{})
	dump := func(labels string) string {
		sc, err := model.ParseScopeKey("sidecar|envoy|shop|" + labels)
		require.NoError(t, err)
		out := translate.Build(x, sc)
		require.NoError(t, translate.ValidateIn(x, out))
		for _, l := range out.Listeners {
			if l.Name == "10.96.0.10_5432" {
				return l.String()
			}
		}
		t.Fatalf("%s: no listener 10.96.0.10_5432", labels)
		return ""
	}
	other := dump("app=web") // builds the view first
	reporting := dump("app=reporting")
	assert.NotContains(t, other, "outbound|5432||replica.shop.svc.cluster.local")
	assert.Contains(t, reporting, "outbound|5432||replica.shop.svc.cluster.local", "reporting's tcp route for db goes to the replica")
}
