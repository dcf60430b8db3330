package translate_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// explainGateway explains scope for manifests with opts.
func explainGateway(t *testing.T, scope, manifests string, opts translate.Options) translate.GatewayExplanation {
	t.Helper()
	in := filepath.Join(t.TempDir(), "in.yaml")
	require.NoError(t, os.WriteFile(in, []byte(manifests), 0o644))
	sc, err := model.ParseScopeKey(scope)
	require.NoError(t, err)
	return translate.ExplainGateway(translate.NewIndex(loadSnapshot(t, in), opts), sc)
}

// The egress gateway of the golden case gateway-egress-router: its one
// Gateway, the HTTP and TLS passthrough servers on the translated ports,
// and the one route of the two-leg VirtualService that applies there.
func TestExplainGatewayEgress(t *testing.T) {
	in, err := os.ReadFile("testdata/gateway-egress-router/in.yaml")
	require.NoError(t, err)
	e := explainGateway(t, "router|envoy|istio-system|istio=egressgateway", string(in), translate.Options{})
	b, err := json.Marshal(e)
	require.NoError(t, err)
	binding := `{"host": "api.partner.example", "virtualServices": [
	  {"namespace": "shop", "name": "partner-via-egress", "hosts": ["api.partner.example"], "routes": 1}]}`
	assert.JSONEq(t, `{
	  "scope": "router|envoy|istio-system|istio=egressgateway",
	  "scopeGatewayToNamespace": false,
	  "gateways": [{"namespace": "shop", "name": "istio-egressgateway", "selector": {"istio": "egressgateway"},
	    "reason": "selector matches the proxy's labels"}],
	  "ports": [
	    {"port": 8080, "protocol": "HTTP", "listener": "0.0.0.0_8080", "routeConfig": "http.8080",
	     "virtualHosts": ["api.partner.example:80"],
	     "servers": [{"gateway": "shop/istio-egressgateway", "index": 0, "port": 80, "portName": "http", "protocol": "HTTP",
	       "hosts": [`+binding+`]}]},
	    {"port": 8443, "protocol": "TLS", "listener": "0.0.0.0_8443",
	     "servers": [{"gateway": "shop/istio-egressgateway", "index": 1, "port": 443, "portName": "tls", "protocol": "TLS",
	       "tlsMode": "PASSTHROUGH", "hosts": [`+binding+`]}]}
	  ]
	}`, string(b))
}

// explainMix: a gateway deployment (istio: ingress) selected by
// istio-system/public, whose servers are an HTTP one, a TCP one
// conflicting with it on port 80, an HTTPS one terminating TLS (pending),
// one with a bind address and a plain TCP one on 5432 routed by two
// VirtualServices (the older wins); tools/grafana also selects it,
// istio-system/internal does not.
var explainMix = svcYAML("shop", "web", "") + svcYAML("shop", "db", "", "{name: tcp, port: 5432}") +
	svcYAML("shop", "db2", "", "{name: tcp, port: 5432}") +
	gwYAML("istio-system", "public", "2026-01-01T00:00:00Z", "istio: ingress", httpServer("web.bank.example")+
		"  - port: {number: 80, name: tcp, protocol: TCP}\n    hosts: [db.bank.internal]\n"+
		"  - port: {number: 443, name: https, protocol: HTTPS}\n    hosts: [web.bank.example]\n    tls: {mode: SIMPLE, credentialName: web-cert}\n"+
		"  - port: {number: 8443, name: http-bind, protocol: HTTP}\n    hosts: [\"*\"]\n    bind: 10.0.0.1\n"+
		"  - port: {number: 5432, name: tcp-db, protocol: TCP}\n    hosts: [db.bank.internal]\n") +
	gwYAML("tools", "grafana", "2026-01-02T00:00:00Z", "istio: ingress", httpServer("grafana.bank.internal")) +
	gwYAML("istio-system", "internal", "2026-01-01T00:00:00Z", "istio: ingress-internal", httpServer(`"*"`)) +
	gwRoute("shop", "web", "web.bank.example", "istio-system/public", "web") +
	gwRoute("shop", "stray", "other.bank.example", "istio-system/public", "web") +
	vsYAML("shop", "private", "2026-01-01T00:00:00Z", "  hosts: [web.bank.example]\n  gateways: [istio-system/public]\n"+
		"  exportTo: [\".\"]\n  http:\n  - route:\n    - destination: {host: web}\n") +
	vsYAML("shop", "db", "2026-01-01T00:00:00Z", "  hosts: [db.bank.internal]\n  gateways: [istio-system/public]\n"+
		"  tcp:\n  - match: [{port: 5432}]\n    route:\n    - destination: {host: db}\n") +
	vsYAML("shop", "db2", "2026-01-02T00:00:00Z", "  hosts: [db.bank.internal]\n  gateways: [istio-system/public]\n"+
		"  tcp:\n  - route:\n    - destination: {host: db2}\n")

func TestExplainGatewaySelectionAndLeftOut(t *testing.T) {
	e := explainGateway(t, "router|envoy|istio-system|istio=ingress", explainMix, translate.Options{ScopeGatewayToNamespace: true})
	assert.True(t, e.ScopeGatewayToNamespace)
	require.Len(t, e.Gateways, 1)
	assert.Equal(t, "public", e.Gateways[0].Name)
	require.Len(t, e.SkippedGateways, 2)
	assert.Equal(t, "internal", e.SkippedGateways[0].Name, "oldest first")
	assert.Contains(t, e.SkippedGateways[0].Reason, "selector does not match the proxy's labels (istio=ingress)")
	assert.Equal(t, "tools/grafana", e.SkippedGateways[1].Namespace+"/"+e.SkippedGateways[1].Name)
	assert.Contains(t, e.SkippedGateways[1].Reason, "PILOT_SCOPE_GATEWAY_TO_NAMESPACE")

	require.Len(t, e.Ports, 2)
	http, tcp := e.Ports[0], e.Ports[1]
	assert.Equal(t, translate.GatewayPort{Port: 80, Protocol: "HTTP", Listener: "0.0.0.0_80", RouteConfig: "http.80",
		VirtualHosts: []string{"web.bank.example:80"}, Servers: []translate.GatewayServer{{
			Gateway: "istio-system/public", Index: 0, Port: 80, PortName: "http", Protocol: "HTTP",
			Hosts: []translate.GatewayHost{{Host: "web.bank.example", VirtualServices: []translate.GatewayHostBinding{
				{Namespace: "shop", Name: "web", Hosts: []string{"web.bank.example"}, Routes: 1}}}},
		}}}, http, "shop/private is exported to shop only, the proxy is in istio-system")
	assert.Equal(t, uint32(5432), tcp.Port)
	assert.Equal(t, "0.0.0.0_5432", tcp.Listener)
	require.Len(t, tcp.Servers, 1)
	bound := tcp.Servers[0].Hosts[0].VirtualServices
	require.Len(t, bound, 2)
	assert.Equal(t, translate.GatewayHostBinding{Namespace: "shop", Name: "db", Hosts: []string{"db.bank.internal"}, Routes: 1,
		Note: "proxies to spec.tcp[0]"}, bound[0])
	assert.Equal(t, "db2", bound[1].Name)
	assert.Zero(t, bound[1].Routes)
	assert.Contains(t, bound[1].Note, "not used")

	var leftOut []int
	for _, s := range e.LeftOutServers {
		leftOut = append(leftOut, s.Index)
	}
	assert.Equal(t, []int{1, 2, 3}, leftOut)
	assert.Contains(t, e.LeftOutServers[0].Reason, "conflicts with HTTP server 0")
	assert.Contains(t, e.LeftOutServers[1].Reason, "Secret istio-system/web-cert does not exist", "its Secret is looked up in the proxy's namespace")
	assert.Contains(t, e.LeftOutServers[2].Reason, "bind address")

	require.Len(t, e.UnboundVirtualServices, 2)
	assert.Equal(t, "private", e.UnboundVirtualServices[0].Name)
	assert.Contains(t, e.UnboundVirtualServices[0].Reason, "not exported to the proxy's namespace istio-system")
	assert.Equal(t, "stray", e.UnboundVirtualServices[1].Name)
	assert.Contains(t, e.UnboundVirtualServices[1].Reason, "no host matches a server host")

	var fields []string
	for _, oe := range e.ConfigErrors {
		fields = append(fields, string(oe.Kind)+" "+oe.Name+" "+oe.Field)
	}
	assert.Equal(t, []string{"Gateway public spec.servers[1].port", "Gateway public spec.servers[2].tls.credentialName",
		"Gateway public spec.servers[3].bind", "VirtualService stray spec.gateways[0]"}, fields)

	// Without namespace scoping tools/grafana is merged on port 80 too; its
	// host has no VirtualService: Envoy answers 404.
	e = explainGateway(t, "router|envoy|istio-system|istio=ingress", explainMix, translate.Options{})
	require.Len(t, e.Gateways, 2)
	require.Len(t, e.Ports[0].Servers, 2)
	g := e.Ports[0].Servers[1]
	assert.Equal(t, "tools/grafana", g.Gateway)
	assert.Empty(t, g.Hosts[0].VirtualServices)
	assert.Contains(t, g.Hosts[0].Note, "Envoy answers 404")
}

// The explanation is the same, byte for byte, every time.
func TestExplainGatewayDeterministic(t *testing.T) {
	var first []byte
	for range 5 {
		b, err := json.Marshal(explainGateway(t, "router|envoy|istio-system|istio=ingress", explainMix, translate.Options{}))
		require.NoError(t, err)
		if first == nil {
			first = b
		}
		require.Equal(t, string(first), string(b))
	}
}
