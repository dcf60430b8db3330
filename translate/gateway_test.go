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

// gwYAML renders a Gateway; servers is its indented servers list.
func gwYAML(ns, name, created, selector, servers string) string {
	return "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: " + name + ", namespace: " + ns +
		", creationTimestamp: \"" + created + "\"}\nspec:\n  selector: {" + selector + "}\n  servers:\n" + servers
}

// httpServer is a Gateway server on port 80 for hosts.
func httpServer(hosts string) string {
	return "  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [" + hosts + "]\n"
}

// gwRoute renders a VirtualService routing hosts through gateways to dest.
func gwRoute(ns, name, hosts, gateways, dest string) string {
	return vsYAML(ns, name, "2026-01-01T00:00:00Z", "  hosts: ["+hosts+"]\n  gateways: ["+gateways+
		"]\n  http:\n  - route:\n    - destination: {host: "+dest+"}\n")
}

// domainsOf lists the domains of every virtual host of the route
// configuration name, in order.
func domainsOf(out *translate.Output, name string) []string {
	res := []string{}
	for _, rc := range out.Routes {
		if rc.Name != name {
			continue
		}
		for _, vh := range rc.VirtualHosts {
			res = append(res, vh.Domains...)
		}
	}
	return res
}

func listenerNames(out *translate.Output) []string {
	res := []string{}
	for _, l := range out.Listeners {
		res = append(res, l.Name)
	}
	return res
}

func routeNames(out *translate.Output) []string {
	res := []string{}
	for _, r := range out.Routes {
		res = append(res, r.Name)
	}
	return res
}

// twoIngresses: a public and an internal ingress deployment, each selected
// by its own Gateway, plus a Gateway of namespace tools selecting the
// internal one.
var twoIngresses = svcYAML("shop", "web", "") + svcYAML("tools", "grafana", "") +
	gwYAML("istio-system", "public", "2026-01-01T00:00:00Z", "istio: ingress-public", httpServer("shop.bank.example")) +
	gwYAML("istio-system", "internal", "2026-01-01T00:00:00Z", "istio: ingress-internal", httpServer("ops.bank.internal")) +
	gwYAML("tools", "grafana", "2026-01-02T00:00:00Z", "istio: ingress-internal", httpServer("grafana.bank.internal")) +
	gwRoute("shop", "web", "shop.bank.example", "istio-system/public", "web") +
	gwRoute("tools", "ops", "ops.bank.internal", "istio-system/internal", "grafana") +
	gwRoute("tools", "grafana", "grafana.bank.internal", "grafana", "grafana")

// Each gateway deployment gets only the Gateways whose selector matches
// its labels; with ScopeGatewayToNamespace only those of its namespace.
func TestGatewaySelectors(t *testing.T) {
	cases := []struct {
		scope   string
		opts    translate.Options
		domains []string
	}{
		{"router|envoy|istio-system|app=ingress,istio=ingress-public", translate.Options{}, []string{"shop.bank.example"}},
		{"router|envoy|istio-system|istio=ingress-internal", translate.Options{},
			[]string{"grafana.bank.internal", "ops.bank.internal"}},
		{"router|envoy|istio-system|istio=ingress-internal", translate.Options{ScopeGatewayToNamespace: true},
			[]string{"ops.bank.internal"}},
		{"router|envoy|tools|istio=ingress-internal", translate.Options{ScopeGatewayToNamespace: true},
			[]string{"grafana.bank.internal"}},
		{"router|envoy|istio-system|istio=other", translate.Options{}, []string{}},
	}
	for _, c := range cases {
		t.Run(c.scope, func(t *testing.T) {
			out, _, errs := scoped(t, c.scope, twoIngresses, "", c.opts)
			assert.Empty(t, errs)
			assert.Equal(t, c.domains, domainsOf(out, "http.80"))
			if len(c.domains) == 0 {
				assert.Empty(t, out.Listeners, "a router no Gateway selects gets no listener")
				assert.Empty(t, out.Routes)
			} else {
				assert.Equal(t, []string{"0.0.0.0_80"}, listenerNames(out))
			}
		})
	}
}

// FilterGatewayClusters follows the Gateways the router gets, namespace
// scoping included.
func TestFilterGatewayClustersScopedToNamespace(t *testing.T) {
	in := twoIngresses + svcYAML("tools", "ops", "") +
		gwRoute("tools", "ops-ui", "ui.bank.internal", "grafana", "ops")
	opts := translate.Options{FilterGatewayClusters: true}
	out, _, _ := scoped(t, "router|envoy|istio-system|istio=ingress-internal", in, "", opts)
	assert.Equal(t, []string{"grafana.tools.svc.cluster.local", "ops.tools.svc.cluster.local"}, clusterHosts(out))
	opts.ScopeGatewayToNamespace = true
	out, _, _ = scoped(t, "router|envoy|istio-system|istio=ingress-internal", in, "", opts)
	assert.Equal(t, []string{"grafana.tools.svc.cluster.local"}, clusterHosts(out))
	out, _, _ = scoped(t, "router|envoy|istio-system|istio=ingress-public", in, "", opts)
	assert.Equal(t, []string{"web.shop.svc.cluster.local"}, clusterHosts(out))
}

// An HTTP server whose hosts no VirtualService routes gets istiod's
// blackhole virtual host: Envoy answers 404.
func TestGatewayWithoutVirtualService(t *testing.T) {
	in := gwYAML("istio-system", "gw", "2026-01-01T00:00:00Z", "istio: ingress", httpServer(`"*"`))
	out, _, errs := scoped(t, "router|envoy|istio-system|istio=ingress", in, "", translate.Options{})
	assert.Empty(t, errs)
	require.Len(t, out.Routes, 1)
	vhs := out.Routes[0].VirtualHosts
	require.Len(t, vhs, 1)
	assert.Equal(t, "blackhole:80", vhs[0].Name)
	assert.Equal(t, []string{"*"}, vhs[0].Domains)
	assert.Empty(t, vhs[0].Routes)
}

// The port translation uses the gateway workload's Service: port 80
// targeting 8080 listens on 8080; a Service labelled
// experimental.istio.io/disable-gateway-port-translation is not used.
func TestGatewayPortTranslation(t *testing.T) {
	svc := func(labels string) string {
		return "---\napiVersion: v1\nkind: Service\nmetadata: {name: ingress, namespace: istio-system" + labels +
			"}\nspec:\n  selector: {istio: ingress}\n  ports:\n  - {name: http, port: 80, targetPort: 8080}\n"
	}
	gw := gwYAML("istio-system", "gw", "2026-01-01T00:00:00Z", "istio: ingress", httpServer(`"*"`))
	out, _, _ := scoped(t, "router|envoy|istio-system|istio=ingress", svc("")+gw, "", translate.Options{})
	assert.Equal(t, []string{"0.0.0.0_8080"}, listenerNames(out))
	assert.Equal(t, []string{"http.8080"}, routeNames(out))
	assert.Equal(t, "blackhole:80", out.Routes[0].VirtualHosts[0].Name, "virtual hosts keep the server's port")
	off := svc(`, labels: {"experimental.istio.io/disable-gateway-port-translation": "true"}`)
	out, _, _ = scoped(t, "router|envoy|istio-system|istio=ingress", off+gw, "", translate.Options{})
	assert.Equal(t, []string{"0.0.0.0_80"}, listenerNames(out))
	out, _, _ = scoped(t, "router|envoy|other|istio=ingress", svc("")+gw, "", translate.Options{})
	assert.Equal(t, []string{"0.0.0.0_80"}, listenerNames(out), "the Service of another namespace does not apply")
}

// A plain HTTP server and a TLS passthrough route for any SNI ("*") on one
// port would be two filter chains Envoy takes as equal: the later is left
// out and reported, the listener stays valid.
func TestGatewayEqualFilterChains(t *testing.T) {
	in := svcYAML("shop", "web", "") + svcYAML("shop", "tls", "", "{name: tls, port: 443}") +
		gwYAML("istio-system", "a", "2026-01-01T00:00:00Z", "istio: ingress",
			"  - port: {number: 443, name: tls, protocol: TLS}\n    hosts: [\"*\"]\n    tls: {mode: PASSTHROUGH}\n"+
				"  - port: {number: 443, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n") +
		vsYAML("shop", "any", "2026-01-01T00:00:00Z", "  hosts: [\"*\"]\n  gateways: [istio-system/a]\n  tls:\n"+
			"  - match:\n    - sniHosts: [\"*\"]\n    route:\n    - destination: {host: tls}\n")
	out, _, errs := scoped(t, "router|envoy|istio-system|istio=ingress", in, "", translate.Options{})
	require.Len(t, out.Listeners, 1)
	require.Len(t, out.Listeners[0].FilterChains, 1)
	assert.Nil(t, out.Listeners[0].FilterChains[0].FilterChainMatch)
	assert.Empty(t, out.Routes, "the HTTP chain was left out, and its route configuration with it")
	require.Len(t, errs, 1)
	assert.Equal(t, "Gateway", string(errs[0].Kind))
	assert.Equal(t, "spec.servers[1].port", errs[0].Field)
	assert.Contains(t, errs[0].Message, "matches as TLS route 0")
}

// Two HTTPS servers that terminate TLS need distinct port names on one
// port (their route configurations are named after them).
func TestGatewayHTTPSRouteNames(t *testing.T) {
	https := func(name, host string) string {
		return "  - port: {number: 443, name: " + name + ", protocol: HTTPS}\n    hosts: [" + host +
			"]\n    tls: {mode: SIMPLE, credentialName: c}\n"
	}
	in := gwYAML("istio-system", "a", "2026-01-01T00:00:00Z", "istio: ingress",
		https("one", "a.bank.example")+https("two", "b.bank.example")+https("one", "c.bank.example"))
	_, _, errs := scoped(t, "router|envoy|istio-system|istio=ingress", in, "", translate.Options{})
	var fields []string
	for _, e := range errs {
		fields = append(fields, e.Field)
	}
	assert.Equal(t, []string{"spec.servers[2].port.name", "spec.servers[0].tls.credentialName", "spec.servers[1].tls.credentialName"}, fields,
		"the route name conflict, and the missing Secret of each served server")
	assert.Contains(t, errs[0].Message, "https.443.one.a.istio-system")
	assert.Contains(t, errs[1].Message, "Secret istio-system/c does not exist")
}

// Matches that name gateways: on a gateway, those naming it apply, "mesh"
// ones do not; on sidecars the reverse. Short names resolve in the
// VirtualService's namespace, as istiod's resolveGatewayName.
func TestGatewayMatchGateways(t *testing.T) {
	in := svcYAML("istio-system", "web", "") +
		gwYAML("istio-system", "gw", "2026-01-01T00:00:00Z", "istio: ingress", httpServer("web.bank.example")) +
		vsYAML("istio-system", "web", "2026-01-01T00:00:00Z", `  hosts: [web.bank.example, web]
  gateways: [gw, mesh]
  http:
  - name: gateway-only
    match: [{uri: {prefix: /gw}, gateways: [gw]}]
    route: [{destination: {host: web}}]
  - name: legacy-name
    match: [{uri: {prefix: /legacy}, gateways: [gw.istio-system.svc.cluster.local]}]
    route: [{destination: {host: web}}]
  - name: mesh-only
    match: [{uri: {prefix: /mesh}, gateways: [mesh]}]
    route: [{destination: {host: web}}]
  - name: all
    route: [{destination: {host: web}}]
`)
	names := func(out *translate.Output, rc string) []string {
		res := []string{}
		for _, r := range out.Routes {
			if r.Name != rc {
				continue
			}
			for _, vh := range r.VirtualHosts {
				if vh.Name == "allow_any" {
					continue
				}
				for _, rt := range vh.Routes {
					res = append(res, rt.Name)
				}
			}
		}
		return res
	}
	out, _, _ := scoped(t, "router|envoy|istio-system|istio=ingress", in, "", translate.Options{})
	assert.Equal(t, []string{"gateway-only", "legacy-name", "all"}, names(out, "http.80"))
	out, _, _ = scoped(t, "sidecar|envoy|istio-system", in, "", translate.Options{})
	assert.Equal(t, []string{"mesh-only", "all"}, names(out, "8080"))
}

// Routers keep their Gateways' config across an endpoint-only push (the
// Index takes the config over from the previous one).
func TestGatewayConfigCarriedAcrossEndpointPush(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in.yaml")
	require.NoError(t, os.WriteFile(in, []byte(twoIngresses), 0o644))
	store := loadStore(t, in)
	scope, err := model.ParseScopeKey("router|envoy|istio-system|istio=ingress-public")
	require.NoError(t, err)
	prev := translate.NewIndex(store.Current(), translate.Options{})
	set := &model.EndpointSet{Name: "web-1", Namespace: "shop", ServiceName: "web",
		Endpoints: []model.Endpoint{{Address: "10.1.0.1", Ports: map[string]uint32{"http": 8080}, Ready: true, Serving: true}}}
	snap := store.Apply([]model.Change{{Kind: model.KindEndpointSlice, Namespace: "shop", Name: "web-1", Object: set}})
	got := translate.Build(translate.NewIndexFrom(prev, snap, translate.Options{}), scope)
	requireSameOutput(t, translate.Build(translate.NewIndex(snap, translate.Options{}), scope), got)
	assert.Equal(t, []string{"0.0.0.0_80"}, listenerNames(got))
	assert.True(t, got.Listeners[0].GetBindToPort().GetValue(), "a gateway binds its ports")
	assert.Equal(t, "shop.bank.example:80", got.Routes[0].GetVirtualHosts()[0].GetName())
}

// An SNI host listed twice in one TLS match is one server name in the
// filter chain match (Envoy would see overlapping matches).
func TestGatewaySNIListedTwice(t *testing.T) {
	in := svcYAML("shop", "tls", "", "{name: tls, port: 443}") +
		gwYAML("istio-system", "a", "2026-01-01T00:00:00Z", "istio: ingress",
			"  - port: {number: 443, name: tls, protocol: TLS}\n    hosts: [\"*\"]\n    tls: {mode: PASSTHROUGH}\n") +
		vsYAML("shop", "pay", "2026-01-01T00:00:00Z", "  hosts: [pay.bank.example]\n  gateways: [istio-system/a]\n  tls:\n"+
			"  - match:\n    - sniHosts: [pay.bank.example, pay.bank.example]\n    route:\n    - destination: {host: tls}\n")
	out, _, errs := scoped(t, "router|envoy|istio-system|istio=ingress", in, "", translate.Options{})
	assert.Empty(t, errs)
	require.Len(t, out.Listeners, 1)
	require.Len(t, out.Listeners[0].FilterChains, 1)
	assert.Equal(t, []string{"pay.bank.example"}, out.Listeners[0].FilterChains[0].GetFilterChainMatch().GetServerNames())
}

// A TCP server proxies to the first applicable TCP route, as istiod: when
// that route's destination is unknown (reported), the server gets no
// chain — not a later route istiod would never take.
func TestGatewayTCPFirstRouteOnly(t *testing.T) {
	in := svcYAML("shop", "db", "", "{name: tcp, port: 5432}") + svcYAML("shop", "other", "", "{name: tcp, port: 6000}", "{name: tcp-b, port: 6001}") +
		gwYAML("istio-system", "a", "2026-01-01T00:00:00Z", "istio: ingress",
			"  - port: {number: 5432, name: tcp, protocol: TCP}\n    hosts: [\"*\"]\n") +
		vsYAML("shop", "db", "2026-01-01T00:00:00Z", "  hosts: [db.bank.example]\n  gateways: [istio-system/a]\n  tcp:\n"+
			"  - route:\n    - destination: {host: other}\n  - route:\n    - destination: {host: db}\n")
	out, _, errs := scoped(t, "router|envoy|istio-system|istio=ingress", in, "", translate.Options{})
	require.NotEmpty(t, errs, "the unknown destination port is reported")
	assert.Equal(t, "spec.tcp[0].route[0].destination.port", errs[0].Field)
	for _, l := range out.Listeners {
		assert.Empty(t, l.FilterChains, "no chain to the second route")
	}
}
