package xds

import (
	"fmt"
	"testing"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

const sharedScopeKey = "sidecar|envoy|shop|"

// publishTest publishes items (sorted by name) as scope sharedScopeKey's
// resources of typeURL and returns the version.
func publishTest(t *testing.T, c *sharedCache, typeURL string, names []string, items ...types.Resource) string {
	ms := make([]marshalled, len(items))
	for i, r := range items {
		m, err := marshal(nil, typeURL, r)
		require.NoError(t, err)
		ms[i] = m
	}
	v := typeVersion(names, ms)
	c.publish(sharedScopeKey, newTypeWire(typeURL, v, names, ms))
	return v
}

// watch opens a watch for a proxy of sharedScopeKey and returns the response
// it got at once, if any.
func watch(t *testing.T, c *sharedCache, typeURL, version string, sub streamv3.Subscription) (chan cachev3.Response, cachev3.Response) {
	ch := make(chan cachev3.Response, 1)
	req := &cachev3.Request{Node: node(t, "sidecar~10.1.0.9~a.shop~shop.svc.cluster.local", "shop"), TypeUrl: typeURL, VersionInfo: version}
	_, err := c.CreateWatch(req, sub, ch)
	require.NoError(t, err)
	select {
	case r := <-ch:
		return ch, r
	default:
		return ch, nil
	}
}

// TestSharedCacheSharesBytes: every stream of a scope is sent the same
// marshalled resources; a reconnecting stream holding the current version is
// sent nothing until the config changes.
func TestSharedCacheSharesBytes(t *testing.T) {
	c := newSharedCache(scopeHash{})
	l1, l2 := &listener.Listener{Name: "a"}, &listener.Listener{Name: "b"}
	v1 := publishTest(t, c, resourcev3.ListenerType, []string{"a", "b"}, l1, l2)

	_, r1 := watch(t, c, resourcev3.ListenerType, "", streamv3.NewSotwSubscription(nil, true))
	_, r2 := watch(t, c, resourcev3.ListenerType, "", streamv3.NewSotwSubscription(nil, true))
	require.NotNil(t, r1)
	require.NotNil(t, r2)
	d1, _ := r1.GetDiscoveryResponse()
	d2, _ := r2.GetDiscoveryResponse()
	require.Len(t, d1.Resources, 2)
	assert.Same(t, d1.Resources[0], d2.Resources[0], "the same marshalled bytes for every stream")
	assert.NotSame(t, d1, d2, "each stream its own response (the server sets its nonce)")
	assert.Equal(t, v1, d1.VersionInfo)

	ch, r := watch(t, c, resourcev3.ListenerType, v1, streamv3.NewSotwSubscription(nil, true))
	assert.Nil(t, r, "a stream that holds the current version is sent nothing")
	publishTest(t, c, resourcev3.ListenerType, []string{"a", "b"}, l1, l2)
	assert.Empty(t, ch, "republishing the same content sends nothing")
	v2 := publishTest(t, c, resourcev3.ListenerType, []string{"a"}, l1)
	require.Len(t, ch, 1, "a change answers the waiting watch")
	d, _ := (<-ch).GetDiscoveryResponse()
	assert.Equal(t, v2, d.VersionInfo)
	assert.Len(t, d.Resources, 1, "listeners are full state: b is gone")
}

// TestSharedCacheNamedRoutes: a named RDS subscription is sent what it
// lacks, and afterwards only the routes that changed.
func TestSharedCacheNamedRoutes(t *testing.T) {
	c := newSharedCache(scopeHash{})
	ra, rb := &route.RouteConfiguration{Name: "a"}, &route.RouteConfiguration{Name: "b"}
	publishTest(t, c, resourcev3.RouteType, []string{"a", "b", "c"}, ra, rb, &route.RouteConfiguration{Name: "c"})

	sub := streamv3.NewSotwSubscription([]string{"a", "b"}, true)
	_, r := watch(t, c, resourcev3.RouteType, "", sub)
	require.NotNil(t, r)
	d, _ := r.GetDiscoveryResponse()
	assert.Len(t, d.Resources, 2, "the subscribed routes, not c")
	sub.SetReturnedResources(r.GetReturnedResources())

	ch, r := watch(t, c, resourcev3.RouteType, d.VersionInfo, sub)
	assert.Nil(t, r, "nothing new")
	rc := &route.RouteConfiguration{Name: "c", VirtualHosts: []*route.VirtualHost{{Name: "x"}}}
	publishTest(t, c, resourcev3.RouteType, []string{"a", "b", "c"}, ra, rb, rc)
	assert.Empty(t, ch, "a change to a route it does not subscribe to sends nothing")
	publishTest(t, c, resourcev3.RouteType, []string{"a", "b", "c"}, ra, &route.RouteConfiguration{Name: "b", VirtualHosts: []*route.VirtualHost{{Name: "y"}}}, rc)
	require.Len(t, ch, 1)
	d, _ = (<-ch).GetDiscoveryResponse()
	require.Len(t, d.Resources, 1, "only the changed route")
	got := &route.RouteConfiguration{}
	require.NoError(t, d.Resources[0].UnmarshalTo(got))
	assert.Equal(t, "b", got.Name)
}

// TestSharedCacheNewAbsentName: a named listener (or cluster) subscription
// that grows by a name the scope lacks is answered at once, without it: for
// full-state types its absence is how the client (gRPC) learns that it does
// not exist, instead of waiting out its watch timer. Once told, the client is
// not answered again until the resource appears.
func TestSharedCacheNewAbsentName(t *testing.T) {
	c := newSharedCache(scopeHash{})
	v := publishTest(t, c, resourcev3.ListenerType, []string{"a"}, &listener.Listener{Name: "a"})

	sub := streamv3.NewSotwSubscription([]string{"a"}, false)
	_, r := watch(t, c, resourcev3.ListenerType, "", sub)
	require.NotNil(t, r)
	sub.SetReturnedResources(r.GetReturnedResources())

	sub.SetResourceSubscription([]string{"a", "missing"})
	_, r = watch(t, c, resourcev3.ListenerType, v, sub)
	require.NotNil(t, r, "a newly subscribed listener that does not exist is answered by its absence")
	d, _ := r.GetDiscoveryResponse()
	assert.Len(t, d.Resources, 1, "a only")
	sub.SetReturnedResources(r.GetReturnedResources())

	ch, r := watch(t, c, resourcev3.ListenerType, v, sub)
	assert.Nil(t, r, "the ACK of that response is not answered again")
	publishTest(t, c, resourcev3.ListenerType, []string{"a", "missing"}, &listener.Listener{Name: "a"}, &listener.Listener{Name: "missing"})
	require.Len(t, ch, 1, "the listener appearing answers the watch")
	d, _ = (<-ch).GetDiscoveryResponse()
	assert.Len(t, d.Resources, 2)

	// A new stream to a restarted meshd echoing a version, naming only
	// listeners that do not exist, is answered too.
	_, r = watch(t, c, resourcev3.ListenerType, "v-of-another-process", streamv3.NewSotwSubscription([]string{"gone"}, false))
	require.NotNil(t, r)
	d, _ = r.GetDiscoveryResponse()
	assert.Empty(t, d.Resources)
}

// TestSharedCacheForgetsUnpublishedScopes: a watch on a scope nothing
// publishes (a stream whose later requests carry another node) leaves no
// entry behind once cancelled.
func TestSharedCacheForgetsUnpublishedScopes(t *testing.T) {
	c := newSharedCache(scopeHash{})
	for i := range 3 {
		req := &cachev3.Request{Node: node(t, fmt.Sprintf("sidecar~10.1.0.%d~a.ns%d~ns%d.svc.cluster.local", i, i, i), fmt.Sprintf("ns%d", i)),
			TypeUrl: resourcev3.ListenerType}
		cancel, err := c.CreateWatch(req, streamv3.NewSotwSubscription(nil, true), make(chan cachev3.Response, 1))
		require.NoError(t, err)
		cancel()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	assert.Empty(t, c.scopes)
}

// TestMarshalRoutesPerVirtualHost: a route configuration encoded from its
// virtual hosts' memoised encodings decodes to itself, is the same bytes
// every time, and two configurations sharing a virtual host share its
// encoding in the memo.
func TestMarshalRoutesPerVirtualHost(t *testing.T) {
	shared := &route.VirtualHost{Name: "a", Domains: []string{"a", "a:80"},
		Routes: []*route.Route{{Name: "default", Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: "/"}}}}}
	rc1 := &route.RouteConfiguration{Name: "80", ValidateClusters: wrapperspb.Bool(false),
		VirtualHosts: []*route.VirtualHost{shared, {Name: "b", Domains: []string{"b"}}}}
	rc2 := &route.RouteConfiguration{Name: "80", VirtualHosts: []*route.VirtualHost{{Name: "c", Domains: []string{"c"}}, shared}}
	memo := newWireMemo(nil)
	for _, rc := range []*route.RouteConfiguration{rc1, rc2} {
		b, err := marshalRoutes(memo, rc)
		require.NoError(t, err)
		got := &route.RouteConfiguration{}
		require.NoError(t, proto.Unmarshal(b, got))
		require.True(t, proto.Equal(rc, got), "%v", got)
		again, err := marshalRoutes(newWireMemo(nil), rc)
		require.NoError(t, err)
		require.Equal(t, b, again)
	}
	n := 0
	memo.m.Range(func(k, _ any) bool { n++; return true })
	require.Equal(t, 3, n, "one encoding per virtual host")
	m, err := marshal(memo, resourcev3.RouteType, rc1)
	require.NoError(t, err)
	want, err := marshalRoutes(newWireMemo(nil), rc1)
	require.NoError(t, err)
	require.Equal(t, want, m.any.GetValue(), "marshal encodes route configurations per virtual host")
}

// TestSharedCacheNamedReconnect: a new stream's named (RDS) watch whose
// client echoes the current version — a reconnect to a restarted meshd or
// another replica — is sent nothing; the next change answers it.
func TestSharedCacheNamedReconnect(t *testing.T) {
	c := newSharedCache(scopeHash{})
	r1, r2 := &route.RouteConfiguration{Name: "80"}, &route.RouteConfiguration{Name: "8080"}
	v1 := publishTest(t, c, resourcev3.RouteType, []string{"80", "8080"}, r1, r2)
	sub := streamv3.NewSotwSubscription([]string{"80", "8080"}, false)
	ch, r := watch(t, c, resourcev3.RouteType, v1, sub)
	assert.Nil(t, r, "the client holds the current version: nothing is sent")
	_, r = watch(t, c, resourcev3.RouteType, "stale-version", streamv3.NewSotwSubscription([]string{"80", "8080"}, false))
	require.NotNil(t, r, "a client holding another version is answered at once")
	r2b := &route.RouteConfiguration{Name: "8080", VirtualHosts: []*route.VirtualHost{{Name: "x", Domains: []string{"x"}}}}
	publishTest(t, c, resourcev3.RouteType, []string{"80", "8080"}, r1, r2b)
	require.Len(t, ch, 1, "the next change answers the reconnected watch")
}
