package translate

import (
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/stretchr/testify/assert"
	networking "istio.io/api/networking/v1"
)

// The host helpers are istiod's (pkg/config/host), checked against the
// examples of its documentation.
func TestGatewayHostMatching(t *testing.T) {
	assert.Equal(t, []string{"foo.com", "bar.com"}, intersectHosts([]string{"foo.com", "bar.com"}, []string{"*.com"}))
	assert.Equal(t, []string{"foo.com", "bar.net"}, intersectHosts([]string{"foo.com", "*.net"}, []string{"*.com", "bar.net"}))
	assert.Equal(t, []string{"*.bar.net"}, intersectHosts([]string{"foo.com", "*.net"}, []string{"*.bar.net"}))
	assert.Empty(t, intersectHosts([]string{"foo.com"}, []string{"bar.com"}))
	assert.Equal(t, []string{"api.bank.example"}, intersectHosts([]string{"*"}, []string{"api.bank.example"}))

	assert.Equal(t, []string{"foo.com"}, serverHostsFor([]string{"ns1/foo.com", "ns2/bar.com"}, "ns1"))
	assert.Empty(t, serverHostsFor([]string{"ns1/foo.com", "ns2/bar.com"}, "ns3"))
	assert.Equal(t, []string{"foo.com", "bar.com"}, serverHostsFor([]string{"foo.com", "ns2/bar.com"}, "ns2"))

	for _, c := range []struct {
		n, o  string
		match bool
	}{
		{"foo.com", "foo.com", true}, {"foo.com", "bar.com", false}, {"*.com", "foo.com", true},
		{"bar.com", "*.com", true}, {"*.foo.com", "foo.com", false}, {"*", "foo.com", true}, {"*", "*.com", true},
	} {
		assert.Equal(t, c.match, hostOverlaps(c.n, c.o), "%s ~ %s", c.n, c.o)
	}
	assert.True(t, moreSpecific("a.bank.example", "b.example"))
	assert.True(t, moreSpecific("b.example", "*.bank.example"))
	assert.True(t, moreSpecific("a.example", "b.example"))
}

func TestResolveGatewayName(t *testing.T) {
	for g, want := range map[string]string{
		"gw": "shop/gw", "./gw": "shop/gw", "istio-system/gw": "istio-system/gw",
		"gw.istio-system": "istio-system/gw", "gw.istio-system.svc.cluster.local": "istio-system/gw",
	} {
		assert.Equal(t, want, resolveGatewayName(g, "shop"), g)
	}
	assert.Equal(t, []string{"shop/a", "x/b"}, resolvedGateways([]string{"mesh", "a", "x/b"}, "shop"))
}

func TestSanitizeServerHosts(t *testing.T) {
	s := &networking.Server{Hosts: []string{"./a.example", "*/b.example", "other/c.example", "d.example"}}
	assert.Equal(t, []string{"shop/a.example", "b.example", "other/c.example", "d.example"}, sanitizeServerHosts(s, "shop").Hosts)
	assert.Equal(t, []string{"./a.example", "*/b.example", "other/c.example", "d.example"}, s.Hosts, "the Gateway is not modified")
	assert.Equal(t, []string{"*"}, sanitizeServerHosts(&networking.Server{Hosts: []string{"a.example", "*/*"}}, "shop").Hosts)
}

// Virtual hosts with the very same routes share one, in istiod's host
// order (longest first, wildcards last); catch-all routes go last.
func TestCollapseVirtualHosts(t *testing.T) {
	r1, r2 := &route.Route{Name: "1"}, &route.Route{Name: "2"}
	shared := []*route.Route{r1, r2}
	in := map[string]*route.VirtualHost{
		"a.example":     gatewayVirtualHost("a.example", 80, shared, false),
		"bb.example":    gatewayVirtualHost("bb.example", 80, append([]*route.Route(nil), shared...), false),
		"*.example":     gatewayVirtualHost("*.example", 80, append([]*route.Route(nil), shared...), false),
		"c.example":     gatewayVirtualHost("c.example", 80, shared, true),
		"other.example": gatewayVirtualHost("other.example", 80, []*route.Route{r2}, false),
	}
	out := collapseVirtualHosts(in)
	var got [][]string
	for _, vh := range out {
		got = append(got, vh.Domains)
	}
	// c.example requires TLS: it does not join, and is the one recorded for
	// those routes from then on, so *.example does not join either.
	assert.Equal(t, [][]string{{"other.example"}, {"bb.example", "a.example"}, {"c.example"}, {"*.example"}}, got)

	all := &route.Route{Name: "all", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}}
	some := &route.Route{Name: "some", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/x"}}}
	assert.Equal(t, []*route.Route{some, r1, all}, catchAllLast([]*route.Route{all, some, r1}))
}
