package translate_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// scoped translates manifests for a scope with opts, checks the output and
// returns it with the scope's explanation and every config error.
func scoped(t *testing.T, scope, manifests, mesh string, opts translate.Options) (*translate.Output, translate.ScopeExplanation, []model.ObjectError) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.yaml")
	require.NoError(t, os.WriteFile(in, []byte(manifests), 0o644))
	if mesh != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(mesh), 0o644))
	}
	snap := loadSnapshot(t, in)
	sc, err := model.ParseScopeKey(scope)
	require.NoError(t, err)
	x := translate.NewIndex(snap, opts)
	out := translate.Build(x, sc)
	require.NoError(t, translate.Validate(out))
	return out, translate.ExplainScope(x, sc), append(snap.Errors(), x.Errors()...)
}

// visibleHosts lists the hostnames of the services the scope sees.
func visibleHosts(e translate.ScopeExplanation) []string {
	out := []string{}
	for _, s := range e.Services {
		out = append(out, s.Hostname)
	}
	return out
}

// clusterHosts lists the hostnames of the outbound clusters.
func clusterHosts(out *translate.Output) []string {
	seen := map[string]bool{}
	res := []string{}
	for _, c := range out.Clusters {
		if _, _, host, ok := translate.ParseClusterName(c.Name); ok && !seen[host] {
			seen[host] = true
			res = append(res, host)
		}
	}
	sort.Strings(res)
	return res
}

func svcYAML(ns, name, annotations string, ports ...string) string {
	s := "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
		"\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n"
	if annotations != "" {
		s += "  annotations: {" + annotations + "}\n"
	}
	s += "spec:\n  ports:\n"
	if len(ports) == 0 {
		ports = []string{"{name: http, port: 8080}"}
	}
	for _, p := range ports {
		s += "  - " + p + "\n"
	}
	return s
}

func seYAML(ns, name, host, extra string) string {
	return "---\napiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: " + name +
		", namespace: " + ns + ", creationTimestamp: \"2026-01-01T00:00:00Z\"}\nspec:\n  hosts: [" + host +
		"]\n  location: MESH_EXTERNAL\n  resolution: DNS\n  ports:\n  - {name: tls, number: 443, protocol: TLS}\n" + extra
}

// sidecarYAML renders a Sidecar; spec is its indented spec body.
func sidecarYAML(ns, name, created, spec string) string {
	return "---\napiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: " + name + ", namespace: " + ns +
		", creationTimestamp: \"" + created + "\"}\nspec:\n" + spec
}

func vsYAML(ns, name, created, spec string) string {
	return "---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: " + name + ", namespace: " + ns +
		", creationTimestamp: \"" + created + "\"}\nspec:\n" + spec
}

var scopeServices = svcYAML("shop", "cart", "") + svcYAML("shop", "web", "") +
	svcYAML("backend", "core", "", "{name: http, port: 8080}", "{name: grpc, port: 9090}") +
	svcYAML("backend", "ledger", "") +
	seYAML("ext", "api", "api.example.com", "") + seYAML("ext", "www", "www.example.org", "")

// Sidecar precedence: workloadSelector > the namespace's selector-less one >
// the root namespace's; routers ignore Sidecars.
func TestSidecarPrecedence(t *testing.T) {
	in := scopeServices +
		sidecarYAML("istio-system", "root", "2025-01-01T00:00:00Z", "  egress:\n  - hosts: [\"*/*.example.com\"]\n") +
		sidecarYAML("shop", "ns-default", "2025-06-01T00:00:00Z", "  egress:\n  - hosts: [\"./*\"]\n") +
		sidecarYAML("shop", "ns-younger", "2025-07-01T00:00:00Z", "  egress:\n  - hosts: [\"~/*\"]\n") +
		sidecarYAML("shop", "web", "2026-01-01T00:00:00Z",
			"  workloadSelector: {labels: {app: web}}\n  egress:\n  - hosts: [\"backend/*\"]\n")
	cases := []struct {
		scope, sidecar string
		source         translate.SidecarSource
		hosts          []string
	}{
		{"sidecar|envoy|shop|app=web,tier=front", "web", translate.SidecarByWorkloadSelector,
			[]string{"core.backend.svc.cluster.local", "ledger.backend.svc.cluster.local"}},
		{"sidecar|envoy|shop|app=cart", "ns-default", translate.SidecarNamespaceDefault,
			[]string{"cart.shop.svc.cluster.local", "web.shop.svc.cluster.local"}},
		{"sidecar|envoy|shop", "ns-default", translate.SidecarNamespaceDefault,
			[]string{"cart.shop.svc.cluster.local", "web.shop.svc.cluster.local"}},
		{"sidecar|envoy|loan|app=web", "root", translate.SidecarRootNamespace, []string{"api.example.com"}},
		{"router|envoy|shop|app=web", "", translate.SidecarIgnoredForGateway, []string{
			"api.example.com", "cart.shop.svc.cluster.local", "core.backend.svc.cluster.local",
			"ledger.backend.svc.cluster.local", "web.shop.svc.cluster.local", "www.example.org"}},
	}
	for _, c := range cases {
		t.Run(c.scope, func(t *testing.T) {
			out, e, errs := scoped(t, c.scope, in, "", translate.Options{})
			assert.Empty(t, errs)
			assert.Equal(t, c.source, e.Sidecar.Source)
			assert.Equal(t, c.sidecar, e.Sidecar.Name)
			assert.Equal(t, c.hosts, visibleHosts(e))
			assert.Equal(t, c.hosts, clusterHosts(out))
		})
	}
	_, e, _ := scoped(t, "sidecar|envoy|shop", scopeServices, "", translate.Options{})
	assert.Equal(t, translate.SidecarNone, e.Sidecar.Source)
	assert.Len(t, e.Services, 6)
	assert.Equal(t, "no Sidecar: exported to namespace", e.Services[0].Reason)
}

// Egress hosts: namespace ".", "*", "~" or a name; dnsName "*", "*.suffix",
// an exact FQDN or a short name; a listener port limits the ports.
func TestSidecarEgressHosts(t *testing.T) {
	cases := []struct {
		name, egress string
		want         []string
	}{
		{"dot", `["./*"]`, []string{"cart.shop.svc.cluster.local", "web.shop.svc.cluster.local"}},
		{"any namespace", `["*/*"]`, []string{"api.example.com", "cart.shop.svc.cluster.local", "core.backend.svc.cluster.local",
			"ledger.backend.svc.cluster.local", "web.shop.svc.cluster.local", "www.example.org"}},
		{"no namespace", `["~/*"]`, []string{}},
		{"named namespace", `["backend/*"]`, []string{"core.backend.svc.cluster.local", "ledger.backend.svc.cluster.local"}},
		{"exact FQDN", `["backend/core.backend.svc.cluster.local"]`, []string{"core.backend.svc.cluster.local"}},
		{"exact FQDN, wrong namespace", `["shop/core.backend.svc.cluster.local"]`, []string{}},
		{"wildcard suffix", `["*/*.example.com"]`, []string{"api.example.com"}},
		{"wildcard suffix in one namespace", `["ext/*.org", "shop/*.example.com"]`, []string{"www.example.org"}},
		{"short names", `["./cart", "*/core.backend"]`, []string{"cart.shop.svc.cluster.local", "core.backend.svc.cluster.local"}},
		{"unknown namespace", `["nowhere/*"]`, []string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := scopeServices + sidecarYAML("shop", "default", "2026-01-01T00:00:00Z", "  egress:\n  - hosts: "+c.egress+"\n")
			out, e, errs := scoped(t, "sidecar|envoy|shop", in, "", translate.Options{})
			assert.Empty(t, errs)
			assert.Equal(t, c.want, visibleHosts(e))
			assert.Equal(t, c.want, clusterHosts(out))
		})
	}
}

// An egress listener with a port imports only that port of the services it
// matches; a listener without port imports every port.
func TestSidecarEgressPort(t *testing.T) {
	in := scopeServices + sidecarYAML("shop", "default", "2026-01-01T00:00:00Z", `  egress:
  - port: {number: 9090, protocol: GRPC, name: grpc}
    hosts: ["backend/*"]
  - hosts: ["./*"]
`)
	out, e, _ := scoped(t, "sidecar|envoy|shop", in, "", translate.Options{})
	require.Equal(t, []string{"cart.shop.svc.cluster.local", "core.backend.svc.cluster.local", "web.shop.svc.cluster.local"}, visibleHosts(e))
	assert.Equal(t, []uint32{9090}, e.Services[1].Ports)
	assert.Equal(t, "egress host backend/*", e.Services[1].Reason)
	assert.False(t, hasCluster(out, "outbound|8080||core.backend.svc.cluster.local"))
	assert.True(t, hasCluster(out, "outbound|9090||core.backend.svc.cluster.local"))
	assert.True(t, hasListener(out, "0.0.0.0_9090"))
}

// routeName returns the name of the first route of a virtual host, "" when
// there is no such virtual host.
func routeName(out *translate.Output, vhost string) string {
	for _, rc := range out.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			if vh.GetName() == vhost {
				return vh.GetRoutes()[0].GetName()
			}
		}
	}
	return ""
}

func hasCluster(out *translate.Output, name string) bool {
	for _, c := range out.Clusters {
		if c.Name == name {
			return true
		}
	}
	return false
}

// VirtualServices are imported when an egress host's namespace is theirs
// and its dnsName matches one of their hosts (either way round); the
// destinations of an imported VirtualService become visible.
func TestSidecarVirtualServices(t *testing.T) {
	vs := vsYAML("shop", "cart-to-core", "2026-01-01T00:00:00Z", `  hosts: [cart]
  http:
  - route:
    - destination: {host: core.backend.svc.cluster.local}
`) + vsYAML("shop", "ledger-timeout", "2026-01-01T00:00:00Z", `  hosts: [ledger.backend.svc.cluster.local]
  http:
  - timeout: 2s
    route:
    - destination: {host: ledger.backend.svc.cluster.local}
`)
	cases := []struct {
		egress, ledgerRoute string
		vs, hosts           []string
	}{
		{`["./*"]`, "shop.ledger-timeout.0", []string{"shop/cart-to-core", "shop/ledger-timeout"},
			[]string{"cart.shop.svc.cluster.local", "core.backend.svc.cluster.local", "ledger.backend.svc.cluster.local", "web.shop.svc.cluster.local"}},
		{`["./web.shop.svc.cluster.local"]`, "", nil, []string{"web.shop.svc.cluster.local"}},
		// The services are imported, not shop's VirtualServices.
		{`["backend/*"]`, "default", nil, []string{"core.backend.svc.cluster.local", "ledger.backend.svc.cluster.local"}},
		// The VirtualService is imported by its host; its destination follows.
		{`["./ledger.backend.svc.cluster.local"]`, "shop.ledger-timeout.0", []string{"shop/ledger-timeout"},
			[]string{"ledger.backend.svc.cluster.local"}},
		// "*.svc.cluster.local" matches the host of both, either way round.
		{`["*/*.svc.cluster.local"]`, "shop.ledger-timeout.0", []string{"shop/cart-to-core", "shop/ledger-timeout"},
			[]string{"cart.shop.svc.cluster.local", "core.backend.svc.cluster.local", "ledger.backend.svc.cluster.local", "web.shop.svc.cluster.local"}},
	}
	for _, c := range cases {
		t.Run(c.egress, func(t *testing.T) {
			in := scopeServices + vs + sidecarYAML("shop", "default", "2026-01-01T00:00:00Z", "  egress:\n  - hosts: "+c.egress+"\n")
			out, e, errs := scoped(t, "sidecar|envoy|shop", in, "", translate.Options{})
			assert.Empty(t, errs)
			var got []string
			for _, v := range e.VirtualServices {
				got = append(got, v.Namespace+"/"+v.Name)
			}
			assert.Equal(t, c.vs, got)
			assert.Equal(t, c.hosts, visibleHosts(e))
			assert.Equal(t, c.hosts, clusterHosts(out))
			assert.Equal(t, c.ledgerRoute, routeName(out, "ledger.backend.svc.cluster.local:8080"))
		})
	}
}

// Proxyless gRPC clients honour the Sidecar, as istiod's grpcgen does.
func TestGRPCHonoursSidecar(t *testing.T) {
	in := scopeServices + sidecarYAML("shop", "default", "2026-01-01T00:00:00Z", "  egress:\n  - hosts: [\"./*\"]\n")
	out, e, _ := scoped(t, "sidecar|grpc|shop", in, "", translate.Options{})
	assert.Equal(t, translate.SidecarNamespaceDefault, e.Sidecar.Source)
	assert.Equal(t, []string{"cart.shop.svc.cluster.local", "web.shop.svc.cluster.local"}, clusterHosts(out))
	for _, l := range out.Listeners {
		assert.True(t, strings.HasPrefix(l.Name, "cart") || strings.HasPrefix(l.Name, "web"), l.Name)
	}
}

// exportTo on Services (annotation), ServiceEntries, VirtualServices and
// DestinationRules, with and without MeshConfig defaults.
func TestServiceExportTo(t *testing.T) {
	in := svcYAML("shop", "cart", "") +
		svcYAML("backend", "plain", "") +
		svcYAML("backend", "to-shop", `networking.istio.io/exportTo: "shop"`) +
		svcYAML("backend", "private", `networking.istio.io/exportTo: "."`) +
		svcYAML("backend", "public", `networking.istio.io/exportTo: "*"`) +
		svcYAML("backend", "none", `networking.istio.io/exportTo: "~"`) +
		seYAML("ext", "se-plain", "plain.example.com", "") +
		seYAML("ext", "se-loan", "loan.example.com", "  exportTo: [loan]\n")
	cases := []struct {
		name, mesh, ns string
		want           []string
	}{
		{"no defaults, shop", "", "shop", []string{"cart.shop.svc.cluster.local", "plain.backend.svc.cluster.local",
			"plain.example.com", "public.backend.svc.cluster.local", "to-shop.backend.svc.cluster.local"}},
		{"no defaults, backend", "", "backend", []string{"cart.shop.svc.cluster.local", "plain.backend.svc.cluster.local",
			"plain.example.com", "private.backend.svc.cluster.local", "public.backend.svc.cluster.local"}},
		{"no defaults, loan", "", "loan", []string{"cart.shop.svc.cluster.local", "loan.example.com",
			"plain.backend.svc.cluster.local", "plain.example.com", "public.backend.svc.cluster.local"}},
		{"private default, shop", `defaultServiceExportTo: ["."]`, "shop", []string{"cart.shop.svc.cluster.local",
			"public.backend.svc.cluster.local", "to-shop.backend.svc.cluster.local"}},
		{"private default, ext", `defaultServiceExportTo: ["."]`, "ext", []string{"plain.example.com",
			"public.backend.svc.cluster.local"}},
		{"named default", `defaultServiceExportTo: ["loan"]`, "loan", []string{"cart.shop.svc.cluster.local",
			"loan.example.com", "plain.backend.svc.cluster.local", "plain.example.com", "public.backend.svc.cluster.local"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, e, errs := scoped(t, "sidecar|envoy|"+c.ns, in, c.mesh, translate.Options{})
			assert.Empty(t, errs)
			assert.Equal(t, c.want, visibleHosts(e))
			assert.Equal(t, c.want, clusterHosts(out))
		})
	}
}

// A VirtualService without exportTo takes defaultVirtualServiceExportTo.
func TestVirtualServiceExportToDefault(t *testing.T) {
	in := svcYAML("backend", "core", "") + vsYAML("backend", "core", "2026-01-01T00:00:00Z", `  hosts: [core]
  http:
  - timeout: 5s
    route:
    - destination: {host: core}
`)
	for _, c := range []struct {
		mesh, ns string
		routed   bool
	}{
		{"", "shop", true},
		{`defaultVirtualServiceExportTo: ["."]`, "shop", false},
		{`defaultVirtualServiceExportTo: ["."]`, "backend", true},
		{`defaultVirtualServiceExportTo: ["shop"]`, "shop", true},
		{`defaultVirtualServiceExportTo: ["shop"]`, "loan", false},
	} {
		out, e, _ := scoped(t, "sidecar|envoy|"+c.ns, in, c.mesh, translate.Options{})
		assert.Equal(t, c.routed, routeName(out, "core.backend.svc.cluster.local:8080") == "backend.core.0", "%s %s", c.mesh, c.ns)
		assert.Equal(t, c.routed, len(e.VirtualServices) == 1, "%s %s", c.mesh, c.ns)
	}
}

// VirtualServices of several namespaces for one host: each namespace sees
// its own non-public one first, then ones exported to it by name, then
// public ones, the oldest first. Conflicts are reported only where two are
// visible together.
func TestVirtualServicePerNamespace(t *testing.T) {
	route := func(timeout string) string {
		return "  hosts: [core.backend.svc.cluster.local]\n  http:\n  - timeout: " + timeout +
			"\n    route:\n    - destination: {host: core.backend.svc.cluster.local}\n"
	}
	in := svcYAML("backend", "core", "") +
		vsYAML("backend", "public", "2026-01-01T00:00:00Z", route("1s")) +
		vsYAML("shop", "shop-own", "2026-02-01T00:00:00Z", "  exportTo: [\".\"]\n"+route("2s")) +
		vsYAML("ops", "to-loan", "2026-03-01T00:00:00Z", "  exportTo: [loan]\n"+route("3s")) +
		vsYAML("ops", "public-younger", "2026-04-01T00:00:00Z", route("4s"))
	for ns, want := range map[string]string{"shop": "shop.shop-own.0", "loan": "ops.to-loan.0", "card": "backend.public.0", "backend": "backend.public.0"} {
		out, _, errs := scoped(t, "sidecar|envoy|"+ns, in, "", translate.Options{})
		assert.Equal(t, want, routeName(out, "core.backend.svc.cluster.local:8080"), ns)
		var got []string
		for _, e := range errs {
			got = append(got, e.Namespace+"/"+e.Name)
			if e.Name == "public-younger" {
				assert.Contains(t, e.Message, "this host is ignored here")
			} else {
				assert.Contains(t, e.Message, "also routed by VirtualService backend/public")
			}
		}
		assert.ElementsMatch(t, []string{"shop/shop-own", "ops/to-loan", "ops/public-younger"}, got)
	}
}

// A DestinationRule without exportTo takes defaultDestinationRuleExportTo;
// one exported only to other namespaces does not apply in its own.
func TestDestinationRuleExportToDefault(t *testing.T) {
	in := backend + dr("backend", "core", "2026-01-02T00:00:00Z", "", 22)
	const c = "outbound|8080||core.backend.svc.cluster.local"
	out, _ := translateYAML(t, "sidecar|envoy|loan", in, `defaultDestinationRuleExportTo: ["."]`)
	assert.Equal(t, uint32(4294967295), maxConnections(t, out, c))
	out, _ = translateYAML(t, "sidecar|envoy|backend", in, `defaultDestinationRuleExportTo: ["."]`)
	assert.Equal(t, uint32(22), maxConnections(t, out, c))
	out, _ = translateYAML(t, "sidecar|envoy|loan", in, "")
	assert.Equal(t, uint32(22), maxConnections(t, out, c))
	in = backend + dr("backend", "core", "2026-01-02T00:00:00Z", `  exportTo: ["loan"]`, 22)
	out, _ = translateYAML(t, "sidecar|envoy|backend", in, "")
	assert.Equal(t, uint32(4294967295), maxConnections(t, out, c))
}

// With FilterGatewayClusters a router gets only the clusters of the
// services its Gateways' VirtualServices route to (delegates included).
func TestFilterGatewayClusters(t *testing.T) {
	gw := func(ns, name, selector string) string {
		return "---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: " + name + ", namespace: " + ns +
			"}\nspec:\n  selector: {" + selector + "}\n  servers:\n  - port: {number: 80, name: http, protocol: HTTP}\n    hosts: [\"*\"]\n"
	}
	in := scopeServices +
		gw("istio-system", "customer", "istio: customer-gw") + gw("tools", "internal", "istio: tools-gw") +
		vsYAML("shop", "front", "2026-01-01T00:00:00Z", `  hosts: [shop.bank.example]
  gateways: [istio-system/customer]
  http:
  - match: [{uri: {prefix: /cart}}]
    route:
    - destination: {host: cart}
  - match: [{uri: {prefix: /api}}]
    delegate: {name: api, namespace: backend}
`) + vsYAML("backend", "api", "2026-01-01T00:00:00Z", `  http:
  - route:
    - destination: {host: core}
`) + vsYAML("tools", "ledger-ui", "2026-01-01T00:00:00Z", `  hosts: [tools.bank.example]
  gateways: [internal]
  http:
  - route:
    - destination: {host: ledger.backend.svc.cluster.local}
`)
	cases := []struct {
		scope string
		opts  translate.Options
		want  []string
	}{
		{"router|envoy|istio-system|istio=customer-gw", translate.Options{FilterGatewayClusters: true},
			[]string{"cart.shop.svc.cluster.local", "core.backend.svc.cluster.local"}},
		{"router|envoy|tools|istio=tools-gw", translate.Options{FilterGatewayClusters: true},
			[]string{"ledger.backend.svc.cluster.local"}},
		{"router|envoy|istio-system|istio=other", translate.Options{FilterGatewayClusters: true}, []string{}},
		{"router|envoy|istio-system|istio=customer-gw", translate.Options{}, []string{"api.example.com",
			"cart.shop.svc.cluster.local", "core.backend.svc.cluster.local", "ledger.backend.svc.cluster.local",
			"web.shop.svc.cluster.local", "www.example.org"}},
	}
	for _, c := range cases {
		out, e, _ := scoped(t, c.scope, in, "", c.opts)
		assert.Equal(t, c.want, clusterHosts(out), c.scope)
		assert.True(t, hasCluster(out, translate.BlackHoleCluster))
		if c.opts.FilterGatewayClusters && len(c.want) > 0 {
			assert.Contains(t, e.Services[0].Reason, "bound to Gateway")
			assert.NotEmpty(t, e.HiddenServices)
		}
	}
}

func TestExplainScope(t *testing.T) {
	in := backend + dr("istio-system", "core", "2026-01-02T00:00:00Z", "", 33) +
		svcYAML("shop", "cart", "") + svcYAML("other", "x", "") +
		vsYAML("shop", "cart", "2026-01-01T00:00:00Z", "  hosts: [cart]\n  http:\n  - route:\n    - destination: {host: cart}\n") +
		sidecarYAML("shop", "web", "2026-01-01T00:00:00Z", `  workloadSelector: {labels: {app: web}}
  outboundTrafficPolicy: {mode: REGISTRY_ONLY}
  egress:
  - hosts: ["./*", "backend/core.backend.svc.cluster.local"]
`)
	_, e, _ := scoped(t, "sidecar|envoy|shop|app=web", in, "", translate.Options{})
	b, err := json.Marshal(e)
	require.NoError(t, err)
	assert.JSONEq(t, `{
	  "scope": "sidecar|envoy|shop|app=web",
	  "sidecar": {"namespace": "shop", "name": "web", "source": "workloadSelector",
	    "egressHosts": ["./*", "backend/core.backend.svc.cluster.local"]},
	  "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY", "source": "Sidecar shop/web"},
	  "services": [
	    {"hostname": "cart.shop.svc.cluster.local", "namespace": "shop", "ports": [8080], "reason": "egress host ./*"},
	    {"hostname": "core.backend.svc.cluster.local", "namespace": "backend", "ports": [8080],
	     "reason": "egress host backend/core.backend.svc.cluster.local"}
	  ],
	  "hiddenServices": [
	    {"hostname": "x.other.svc.cluster.local", "namespace": "other", "reason": "no egress host of Sidecar shop/web matches"}
	  ],
	  "virtualServices": [
	    {"namespace": "shop", "name": "cart", "hosts": ["cart.shop.svc.cluster.local"], "reason": "egress host ./*"}
	  ],
	  "destinationRules": [
	    {"host": "core.backend.svc.cluster.local", "namespace": "istio-system", "name": "core", "source": "root namespace"}
	  ]
	}`, string(b))

	// No Sidecar: the mesh's policy, everything exported.
	_, e, _ = scoped(t, "sidecar|envoy|loan", in, "", translate.Options{})
	assert.Equal(t, translate.SidecarNone, e.Sidecar.Source)
	assert.Equal(t, translate.OutboundPolicyExplanation{Mode: "ALLOW_ANY", Source: "MeshConfig"}, e.OutboundTrafficPolicy)
	assert.Len(t, e.Services, 3)
	assert.Empty(t, e.HiddenServices)
	for _, s := range e.Services {
		assert.Equal(t, "no Sidecar: exported to namespace", s.Reason)
	}
	require.Len(t, e.DestinationRules, 1)
	assert.Equal(t, translate.DestinationRuleRootNamespace, e.DestinationRules[0].Source)

	// The proxy's own namespace rule wins, then the service's.
	in2 := in + dr("backend", "core", "2026-01-02T00:00:00Z", "", 22) + dr("loan", "core", "2026-01-02T00:00:00Z", "", 11)
	_, e, _ = scoped(t, "sidecar|envoy|loan", in2, "", translate.Options{})
	assert.Equal(t, translate.DestinationRuleExplanation{Host: "core.backend.svc.cluster.local", Namespace: "loan",
		Name: "core", Source: translate.DestinationRuleProxyNamespace}, e.DestinationRules[0])
	_, e, _ = scoped(t, "sidecar|envoy|card", in2, "", translate.Options{})
	assert.Equal(t, translate.DestinationRuleServiceNamespace, e.DestinationRules[0].Source)
}
