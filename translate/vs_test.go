package translate

import (
	"testing"
	"time"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// vsMesh builds a snapshot straight from model values, bypassing the
// discovery layer's validation, so the translator's own checks are tested.
func vsMesh(t *testing.T, vss ...*model.Config) *Index {
	t.Helper()
	store := model.NewStore()
	var changes []model.Change
	for _, s := range []*model.Service{
		{Hostname: "reviews.shop.svc.cluster.local", Name: "reviews", Namespace: "shop", VIPs: []string{"10.96.0.20"},
			Ports: []model.Port{{Name: "http", Port: 9080, Protocol: model.ProtocolHTTP}}, Origin: model.KindService},
		{Hostname: "ratings.shop.svc.cluster.local", Name: "ratings", Namespace: "shop", VIPs: []string{"10.96.0.21"},
			Ports: []model.Port{{Name: "http", Port: 9080, Protocol: model.ProtocolHTTP}}, Origin: model.KindService},
		{Hostname: "db.shop.svc.cluster.local", Name: "db", Namespace: "shop", VIPs: []string{"10.96.0.22"},
			Ports: []model.Port{{Name: "tcp", Port: 5432, Protocol: model.ProtocolTCP}}, Origin: model.KindService},
	} {
		changes = append(changes, model.Change{Kind: model.KindService, Namespace: s.Namespace, Name: s.Name, Object: s})
	}
	for i, c := range vss {
		c.Kind = model.KindVirtualService
		if c.CreatedAt.IsZero() {
			c.CreatedAt = time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC)
		}
		changes = append(changes, model.Change{Kind: c.Kind, Namespace: c.Namespace, Name: c.Name, Object: c})
	}
	store.Apply(changes)
	return NewIndex(store.Current(), Options{})
}

func vsConfig(ns, name string, spec *networking.VirtualService) *model.Config {
	return &model.Config{Namespace: ns, Name: name, Source: "test", Spec: spec}
}

func dest(host string) []*networking.HTTPRouteDestination {
	return []*networking.HTTPRouteDestination{{Destination: &networking.Destination{Host: host}}}
}

func uriPrefix(p string) *networking.HTTPMatchRequest {
	return &networking.HTTPMatchRequest{Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: p}}}
}

// vhostRoutes returns the routes of host's virtual host in route config name.
func vhostRoutes(t *testing.T, out *Output, name, host string) []*route.Route {
	t.Helper()
	for _, rc := range out.Routes {
		for _, vh := range rc.GetVirtualHosts() {
			if rc.Name == name && vh.GetDomains()[0] == host {
				return vh.GetRoutes()
			}
		}
	}
	t.Fatalf("no virtual host %s in route %s", host, name)
	return nil
}

func routeNames(rs []*route.Route) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.GetName())
	}
	return out
}

func errorFields(x *Index) map[string]string {
	out := map[string]string{}
	for _, e := range x.Errors() {
		out[e.Namespace+"/"+e.Name] = e.Field
	}
	return out
}

var sidecarShop = model.Scope{Type: model.SidecarProxy, Namespace: "shop"}

// A VirtualService with an invalid RE2 regex is rejected and reported with
// its field; the others keep working and no invalid regex is emitted.
func TestBadRegexRejectsOnlyThatVirtualService(t *testing.T) {
	bad := vsConfig("shop", "bad", &networking.VirtualService{
		Hosts: []string{"reviews"},
		Http: []*networking.HTTPRoute{{
			Match: []*networking.HTTPMatchRequest{{Headers: map[string]*networking.StringMatch{
				"x-id": {MatchType: &networking.StringMatch_Regex{Regex: "(["}},
			}}},
			Route: dest("reviews"),
		}},
	})
	good := vsConfig("shop", "good", &networking.VirtualService{
		Hosts: []string{"ratings"},
		Http: []*networking.HTTPRoute{{
			Name: "present",
			Match: []*networking.HTTPMatchRequest{{Headers: map[string]*networking.StringMatch{
				"x-any": {MatchType: &networking.StringMatch_Regex{Regex: "*"}},
			}}},
			Route: dest("reviews"),
		}},
	})
	x := vsMesh(t, bad, good)
	assert.Equal(t, map[string]string{"shop/bad": "spec.http[0].match[0].headers.x-id.regex"}, errorFields(x))
	out := Build(x, sidecarShop)
	require.NoError(t, Validate(out))
	assert.Equal(t, []string{"default"}, routeNames(vhostRoutes(t, out, "9080", "reviews.shop.svc.cluster.local")))
	rs := vhostRoutes(t, out, "9080", "ratings.shop.svc.cluster.local")
	require.Len(t, rs, 1)
	assert.True(t, rs[0].GetMatch().GetHeaders()[0].GetPresentMatch(), `regex "*" is a presence match`)
}

func TestInvalidInputsAreRejected(t *testing.T) {
	cases := map[string]struct {
		route *networking.HTTPRoute
		field string
	}{
		"rewrite regex": {&networking.HTTPRoute{Route: dest("reviews"), Rewrite: &networking.HTTPRewrite{
			UriRegexRewrite: &networking.RegexRewrite{Match: "a(", Rewrite: "b"}}}, "spec.http[0].rewrite.uriRegexRewrite.match"},
		"cors origin regex": {&networking.HTTPRoute{Route: dest("reviews"), CorsPolicy: &networking.CorsPolicy{
			AllowOrigins: []*networking.StringMatch{{MatchType: &networking.StringMatch_Regex{Regex: "+"}}}}}, "spec.http[0].corsPolicy.allowOrigins[0].regex"},
		"header name": {&networking.HTTPRoute{Route: dest("reviews"), Headers: &networking.Headers{
			Request: &networking.Headers_HeaderOperations{Set: map[string]string{"bad name": "v"}}}}, "spec.http[0].headers.request.bad name"},
		"header value": {&networking.HTTPRoute{Route: dest("reviews"), Headers: &networking.Headers{
			Response: &networking.Headers_HeaderOperations{Add: map[string]string{"x-a": "v\r\nx-b: c"}}}}, "spec.http[0].headers.response.x-a"},
		"grpc status": {&networking.HTTPRoute{Route: dest("reviews"), Fault: &networking.HTTPFaultInjection{
			Abort: &networking.HTTPFaultInjection_Abort{ErrorType: &networking.HTTPFaultInjection_Abort_GrpcStatus{GrpcStatus: "NOPE"}}}}, "spec.http[0].fault.abort.grpcStatus"},
		"zero delay": {&networking.HTTPRoute{Route: dest("reviews"), Fault: &networking.HTTPFaultInjection{
			Delay: &networking.HTTPFaultInjection_Delay{HttpDelayType: &networking.HTTPFaultInjection_Delay_FixedDelay{FixedDelay: durationpb.New(0)}}}}, "spec.http[0].fault.delay.fixedDelay"},
		"missing mirror": {&networking.HTTPRoute{Route: dest("reviews"), Mirror: &networking.Destination{Host: "nowhere"}}, "spec.http[0].mirror.host"},
		"no action":      {&networking.HTTPRoute{Name: "empty"}, "spec.http[0].route"},
		"all weights zero": {&networking.HTTPRoute{Route: []*networking.HTTPRouteDestination{
			{Destination: &networking.Destination{Host: "reviews"}}, {Destination: &networking.Destination{Host: "ratings"}}}}, "spec.http[0].route"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			x := vsMesh(t, vsConfig("shop", "vs", &networking.VirtualService{Hosts: []string{"reviews"}, Http: []*networking.HTTPRoute{c.route}}))
			assert.Equal(t, map[string]string{"shop/vs": c.field}, errorFields(x))
			require.NoError(t, Validate(Build(x, sidecarShop)))
		})
	}
}

func TestTCPRouteChecks(t *testing.T) {
	db := []*networking.RouteDestination{{Destination: &networking.Destination{Host: "db"}}}
	cases := map[string]struct {
		vs    *networking.VirtualService
		field string
	}{
		"bad subnet": {&networking.VirtualService{Tcp: []*networking.TCPRoute{{
			Match: []*networking.L4MatchAttributes{{DestinationSubnets: []string{"10.0.0.0/33"}}}, Route: db,
		}}}, "spec.tcp[0].match[0].destinationSubnets"},
		"no destination": {&networking.VirtualService{Tcp: []*networking.TCPRoute{{}}}, "spec.tcp[0].route"},
		"tls without sni": {&networking.VirtualService{Tls: []*networking.TLSRoute{{
			Match: []*networking.TLSMatchAttributes{{Port: 5432}}, Route: db,
		}}}, "spec.tls[0].match[0].sniHosts"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			c.vs.Hosts = []string{"db"}
			x := vsMesh(t, vsConfig("shop", "db", c.vs))
			assert.Equal(t, map[string]string{"shop/db": c.field}, errorFields(x))
			require.NoError(t, Validate(Build(x, sidecarShop)))
		})
	}
}

func TestTCPWeightedRouteReferencesExistingClusters(t *testing.T) {
	x := vsMesh(t, vsConfig("shop", "db", &networking.VirtualService{
		Hosts: []string{"db"},
		Tcp: []*networking.TCPRoute{{Route: []*networking.RouteDestination{
			{Destination: &networking.Destination{Host: "db"}, Weight: 80},
			{Destination: &networking.Destination{Host: "ratings", Port: &networking.PortSelector{Number: 9080}}, Weight: 20},
		}}},
	}))
	require.Empty(t, x.Errors())
	out := Build(x, sidecarShop)
	require.NoError(t, Validate(out))
	for _, l := range out.Listeners {
		if l.Name != "10.96.0.22_5432" {
			continue
		}
		require.Len(t, l.FilterChains, 1)
		var p tcp.TcpProxy
		require.NoError(t, l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&p))
		assert.Len(t, p.GetWeightedClusters().GetClusters(), 2)
		return
	}
	t.Fatal("no listener for db")
}

func TestDelegateErrors(t *testing.T) {
	root := vsConfig("shop", "root", &networking.VirtualService{
		Hosts: []string{"reviews"},
		Http: []*networking.HTTPRoute{
			{Name: "missing", Match: []*networking.HTTPMatchRequest{uriPrefix("/a")}, Delegate: &networking.Delegate{Name: "nowhere"}},
			{Name: "hosts", Match: []*networking.HTTPMatchRequest{uriPrefix("/b")}, Delegate: &networking.Delegate{Name: "ratings-vs"}},
			{Name: "private", Match: []*networking.HTTPMatchRequest{uriPrefix("/c")}, Delegate: &networking.Delegate{Name: "private", Namespace: "other"}},
			{Name: "nested", Match: []*networking.HTTPMatchRequest{uriPrefix("/d")}, Delegate: &networking.Delegate{Name: "nested"}},
			{Name: "ok", Match: []*networking.HTTPMatchRequest{uriPrefix("/e")}, Delegate: &networking.Delegate{Name: "ok"}},
			{Name: "rest", Route: dest("reviews")},
		},
	})
	withHosts := vsConfig("shop", "ratings-vs", &networking.VirtualService{Hosts: []string{"ratings"}, Http: []*networking.HTTPRoute{{Route: dest("ratings")}}})
	private := vsConfig("other", "private", &networking.VirtualService{ExportTo: []string{"."}, Http: []*networking.HTTPRoute{{Route: dest("reviews.shop")}}})
	nested := vsConfig("shop", "nested", &networking.VirtualService{Http: []*networking.HTTPRoute{{Delegate: &networking.Delegate{Name: "ok"}}}})
	ok := vsConfig("shop", "ok", &networking.VirtualService{Http: []*networking.HTTPRoute{
		{Name: "inside", Match: []*networking.HTTPMatchRequest{uriPrefix("/e/1")}, Route: dest("ratings")},
		{Name: "outside", Match: []*networking.HTTPMatchRequest{uriPrefix("/x")}, Route: dest("ratings")},
	}})
	x := vsMesh(t, root, withHosts, private, nested, ok)

	var got []string
	for _, e := range x.Errors() {
		got = append(got, e.Namespace+"/"+e.Name+" "+e.Field)
	}
	assert.ElementsMatch(t, []string{
		"shop/nested spec.http[0].delegate",
		"shop/root spec.http[0].delegate", // not found
		"shop/root spec.http[1].delegate", // has hosts
		"shop/root spec.http[2].delegate", // not exported
		"shop/root spec.http[3].delegate", // invalid (nested)
		"shop/root spec.http[4].delegate", // route "outside" conflicts
	}, got)
	out := Build(x, sidecarShop)
	require.NoError(t, Validate(out))
	rs := vhostRoutes(t, out, "9080", "reviews.shop.svc.cluster.local")
	assert.Equal(t, []string{"ok-inside", "rest"}, routeNames(rs))
	assert.Equal(t, "/e/1", rs[0].GetMatch().GetPrefix())
	assert.Equal(t, "outbound|9080||ratings.shop.svc.cluster.local", rs[0].GetRoute().GetCluster())
}

// Delegate matches inherit what they leave unset from the root match.
func TestDelegateMatchMerge(t *testing.T) {
	root := &networking.HTTPRoute{
		Name: "r", Timeout: durationpb.New(time.Second),
		Match: []*networking.HTTPMatchRequest{{
			Name: "m", Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "/api"}},
			Headers: map[string]*networking.StringMatch{"x-a": {MatchType: &networking.StringMatch_Exact{Exact: "1"}}},
		}},
	}
	leaf := &networking.HTTPRoute{
		Match: []*networking.HTTPMatchRequest{{Headers: map[string]*networking.StringMatch{"x-b": {MatchType: &networking.StringMatch_Exact{Exact: "2"}}}}},
		Route: dest("reviews"),
	}
	m, ok := mergeHTTPRoute(root, leaf)
	require.True(t, ok)
	assert.Equal(t, "r", m.Name)
	assert.Equal(t, "/api", m.Match[0].GetUri().GetPrefix())
	assert.Len(t, m.Match[0].Headers, 2)
	assert.Equal(t, time.Second, m.Timeout.AsDuration())

	_, ok = mergeHTTPRoute(root, &networking.HTTPRoute{Match: []*networking.HTTPMatchRequest{{
		Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: ".*"}},
	}}})
	assert.False(t, ok, "a regex under a prefix root conflicts")
}

func TestGatewayOnlyVirtualServiceSkipsSidecars(t *testing.T) {
	x := vsMesh(t, vsConfig("shop", "edge", &networking.VirtualService{
		Hosts: []string{"reviews"}, Gateways: []string{"shop/public"},
		Http: []*networking.HTTPRoute{{Route: dest("ratings")}},
	}))
	out := Build(x, sidecarShop)
	assert.Equal(t, []string{"default"}, routeNames(vhostRoutes(t, out, "9080", "reviews.shop.svc.cluster.local")))
}

// sourceLabels matches depend on the scope's workload labels.
func TestSourceLabelsFollowScope(t *testing.T) {
	x := vsMesh(t, vsConfig("shop", "vs", &networking.VirtualService{
		Hosts: []string{"reviews"},
		Http: []*networking.HTTPRoute{
			{Name: "frontend", Match: []*networking.HTTPMatchRequest{{
				SourceLabels: map[string]string{"app": "frontend"},
				Uri:          &networking.StringMatch{MatchType: &networking.StringMatch_Prefix{Prefix: "/fe"}},
			}}, Route: dest("ratings")},
			{Name: "rest", Route: dest("reviews")},
		},
	}))
	fe := Build(x, model.Scope{Type: model.SidecarProxy, Namespace: "shop", Labels: "app=frontend,version=v1"})
	other := Build(x, model.Scope{Type: model.SidecarProxy, Namespace: "shop", Labels: "app=batch"})
	assert.Equal(t, []string{"frontend", "rest"}, routeNames(vhostRoutes(t, fe, "9080", "reviews.shop.svc.cluster.local")))
	assert.Equal(t, []string{"rest"}, routeNames(vhostRoutes(t, other, "9080", "reviews.shop.svc.cluster.local")))
}

// A TCP or TLS match naming "mesh" still needs its sourceLabels and
// sourceNamespace (istiod's matchTCP ANDs every condition), whereas an
// HTTP match naming "mesh" waives them (sourceMatchHTTP).
func TestL4MeshMatchKeepsSourceConditions(t *testing.T) {
	x := vsMesh(t, vsConfig("shop", "db", &networking.VirtualService{
		Hosts: []string{"db"}, Gateways: []string{"mesh"},
		Tcp: []*networking.TCPRoute{{
			Match: []*networking.L4MatchAttributes{{Gateways: []string{"mesh"}, SourceLabels: map[string]string{"app": "batch"}}},
			Route: []*networking.RouteDestination{{Destination: &networking.Destination{Host: "ratings", Port: &networking.PortSelector{Number: 9080}}}},
		}},
	}))
	require.Empty(t, x.Errors())
	cluster := func(labels string) string {
		out := Build(x, model.Scope{Type: model.SidecarProxy, Namespace: "shop", Labels: labels})
		require.NoError(t, Validate(out))
		for _, l := range out.Listeners {
			if l.Name == "10.96.0.22_5432" {
				var p tcp.TcpProxy
				require.NoError(t, l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(&p))
				return p.GetCluster()
			}
		}
		t.Fatal("no listener for db")
		return ""
	}
	assert.Equal(t, "outbound|9080||ratings.shop.svc.cluster.local", cluster("app=batch"))
	assert.Equal(t, "outbound|5432||db.shop.svc.cluster.local", cluster("app=web"), "sourceLabels apply with gateways [mesh]")
}

// Proxyless gRPC gets only what grpc-go supports, so it never NACKs.
func TestGRPCLeavesOutUnsupported(t *testing.T) {
	x := vsMesh(t, vsConfig("shop", "vs", &networking.VirtualService{
		Hosts: []string{"reviews"},
		Http: []*networking.HTTPRoute{
			{Name: "redirect", Match: []*networking.HTTPMatchRequest{uriPrefix("/old")}, Redirect: &networking.HTTPRedirect{Uri: "/new"}},
			{
				Name: "all", Route: dest("reviews"), Mirror: &networking.Destination{Host: "ratings"},
				Rewrite:    &networking.HTTPRewrite{Uri: "/v2", Authority: "x"},
				CorsPolicy: &networking.CorsPolicy{AllowMethods: []string{"GET"}},
				Headers:    &networking.Headers{Request: &networking.Headers_HeaderOperations{Set: map[string]string{"x": "y"}}},
				Retries:    &networking.HTTPRetry{Attempts: 2, RetryOn: "5xx,unavailable", PerTryTimeout: durationpb.New(time.Second)},
				Timeout:    durationpb.New(3 * time.Second),
			},
		},
	}))
	out := Build(x, model.Scope{Type: model.SidecarProxy, Generator: model.GeneratorGRPC, Namespace: "shop"})
	require.NoError(t, Validate(out))
	rs := vhostRoutes(t, out, "outbound|9080||reviews.shop.svc.cluster.local", "reviews.shop.svc.cluster.local")
	require.Equal(t, []string{"all"}, routeNames(rs))
	ra := rs[0].GetRoute()
	assert.Empty(t, ra.GetRequestMirrorPolicies())
	assert.Empty(t, ra.GetPrefixRewrite())
	assert.Nil(t, ra.GetHostRewriteSpecifier())
	assert.Empty(t, rs[0].GetTypedPerFilterConfig())
	assert.Empty(t, rs[0].GetRequestHeadersToAdd())
	assert.Equal(t, "unavailable", ra.GetRetryPolicy().GetRetryOn())
	assert.Nil(t, ra.GetRetryPolicy().GetPerTryTimeout())
	assert.Equal(t, 3*time.Second, ra.GetMaxStreamDuration().GetMaxStreamDuration().AsDuration())

	var h hcm.HttpConnectionManager
	require.NoError(t, out.Listeners[0].GetApiListener().GetApiListener().UnmarshalTo(&h))
	var names []string
	for _, f := range h.GetHttpFilters() {
		names = append(names, f.GetName())
	}
	assert.Equal(t, []string{faultFilterName, routerFilterName}, names)
}

// Typed configs inside routes are validated too (Validate unpacks them).
func TestValidateChecksPerRouteFilterConfigs(t *testing.T) {
	bad := translateFault(&networking.HTTPFaultInjection{Abort: &networking.HTTPFaultInjection_Abort{
		ErrorType: &networking.HTTPFaultInjection_Abort_HttpStatus{HttpStatus: 42},
	}})
	rc := &route.RouteConfiguration{Name: "80", VirtualHosts: []*route.VirtualHost{{
		Name: "vh", Domains: []string{"*"},
		Routes: []*route.Route{{
			Match:                prefixMatch("/"),
			Action:               directResponseAction(&networking.HTTPDirectResponse{Status: 200}),
			TypedPerFilterConfig: map[string]*anypb.Any{faultFilterName: mustAny(bad)},
		}},
	}}}
	err := Validate(&Output{Routes: []*route.RouteConfiguration{rc}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HttpStatus")
}

// TestClaimRoutingRejected: a header match on @request.auth.claims
// (istiod's JWT claim routing) is refused with a message saying so.
func TestClaimRoutingRejected(t *testing.T) {
	_, err := checkMatch(&networking.HTTPMatchRequest{Headers: map[string]*networking.StringMatch{
		"@request.auth.claims.groups": {MatchType: &networking.StringMatch_Exact{Exact: "tellers"}}}})
	require.ErrorContains(t, err, "routing on JWT claims")
}
