package xds

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
)

func TestSotwSubscriptionSemantics(t *testing.T) {
	s := newSotwSubscription(nil)
	assert.True(t, s.IsWildcard(), "a first request without names is a wildcard")
	s.set(nil)
	assert.True(t, s.IsWildcard(), "and stays one while no name is requested")

	s.set([]string{"a", "b"})
	assert.False(t, s.IsWildcard())
	assert.Equal(t, map[string]struct{}{"a": {}, "b": {}}, s.SubscribedResources())
	s.returned = map[string]string{"a": "h1", "b": "h2"}
	s.set([]string{"a"})
	assert.Equal(t, map[string]string{"a": "h1"}, s.ReturnedResources(), "what is unsubscribed is forgotten")
	s.set(nil)
	assert.False(t, s.IsWildcard(), "once names were sent, an empty request subscribes to nothing")
	assert.Empty(t, s.SubscribedResources())

	s.set([]string{"*", "c"})
	assert.True(t, s.IsWildcard(), `"*" is an explicit wildcard`)
	assert.Equal(t, map[string]struct{}{"c": {}}, s.SubscribedResources())

	named := newSotwSubscription([]string{"x"})
	assert.False(t, named.IsWildcard())
}

func TestSotwSubscriptionsShareNameSets(t *testing.T) {
	var names []string
	for i := range 50 {
		names = append(names, reqNames.intern("outbound|80||s"+strconv.Itoa(i)+".ns.svc.cluster.local"))
	}
	// Two streams' requests decoded into the same shared list.
	a := newSotwSubscription(reqLists.intern(append([]string(nil), names...)))
	b := newSotwSubscription(reqLists.intern(append([]string(nil), names...)))
	require.Len(t, a.SubscribedResources(), 50)
	assert.Equal(t, reflect.ValueOf(a.SubscribedResources()).UnsafePointer(), reflect.ValueOf(b.SubscribedResources()).UnsafePointer(),
		"streams sending the same list share one name set")
	c := newSotwSubscription(append([]string(nil), names...)) // not a shared list: its own set
	assert.NotEqual(t, reflect.ValueOf(a.SubscribedResources()).UnsafePointer(), reflect.ValueOf(c.SubscribedResources()).UnsafePointer())
	assert.Equal(t, a.SubscribedResources(), c.SubscribedResources())

	// The names' hash (EDS versions) is the same however the set is held,
	// kept while the set is, and follows a change of names.
	h := hashNames(a.SubscribedResources())
	assert.Equal(t, h, subsHash(a))
	assert.Equal(t, h, subsHash(c))
	a.set(reqLists.intern(append([]string(nil), names...))) // an ACK: the same shared set
	assert.Equal(t, h, subsHash(a))
	a.set(names[:10])
	assert.Equal(t, hashNames(nameSetOf(names[:10])), subsHash(a))
	assert.NotEqual(t, h, subsHash(a))
}

func nameSetOf(names []string) map[string]struct{} {
	set, _ := nameSet(names)
	return set
}

func TestSotWStaleNonceIsIgnored(t *testing.T) {
	_, conn := startServer(t, testStore(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	rx := receiver(stream)
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{Node: node(t, "sidecar~10.1.0.9~client.shop~shop.svc.cluster.local", "shop"),
		TypeUrl: resourcev3.ClusterType}))
	first, ok := recvWithin(t, rx, 5*time.Second)
	require.True(t, ok, "no CDS response")
	require.Equal(t, "1", first.Nonce)

	// A request without a version would be answered with everything — but
	// its nonce is not the last one sent, so it is ignored.
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: "stale"}))
	_, got := recvWithin(t, rx, 500*time.Millisecond)
	assert.False(t, got, "a request with a stale nonce must be ignored")

	// The same request with the current nonce is answered, with the next nonce.
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: first.Nonce}))
	again, ok := recvWithin(t, rx, 5*time.Second)
	require.True(t, ok, "a request with the current nonce and no version is answered")
	assert.Equal(t, "2", again.Nonce)
	assert.Equal(t, first.VersionInfo, again.VersionInfo)
	assert.Len(t, again.Resources, len(first.Resources))

	// Once a request is accepted, the next one is not compared with the
	// response before it (go-control-plane's rule; clients rely on it).
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: again.Nonce,
		VersionInfo: again.VersionInfo}))
	_, got = recvWithin(t, rx, 300*time.Millisecond)
	require.False(t, got, "an ACK of the current version gets no response")
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: "1"}))
	third, ok := recvWithin(t, rx, 5*time.Second)
	require.True(t, ok, "a request after an accepted one is handled whatever its nonce")
	assert.Equal(t, "3", third.Nonce)
}

// TestSotWStreamWatchingAnotherType: a stream that also watches a type
// beyond listeners, clusters, endpoints, routes and secrets is served by
// the reflect.Select loop, with the same answers.
func TestSotWStreamWatchingAnotherType(t *testing.T) {
	store := testStore(t)
	s, conn := startServer(t, store)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	rx := receiver(stream)
	n := node(t, "sidecar~10.1.0.9~client.shop~shop.svc.cluster.local", "shop")
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{Node: n, TypeUrl: resourcev3.RuntimeType, ResourceNames: []string{"rtds"}}))
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.ClusterType}))
	cds, ok := recvWithin(t, rx, 5*time.Second)
	require.True(t, ok, "no CDS response")
	require.Equal(t, resourcev3.ClusterType, cds.TypeUrl)
	name := "outbound|8080||frontend.shop.svc.cluster.local"
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNames: []string{name}}))
	eds, ok := recvWithin(t, rx, 5*time.Second)
	require.True(t, ok, "no EDS response")
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.EndpointType,
		VersionInfo: eds.VersionInfo, ResponseNonce: eds.Nonce, ResourceNames: []string{name}}))

	// An endpoint change reaches the stream through the same loop.
	s.push(store.Apply([]model.Change{slice("frontend", "10.1.0.1", "10.1.0.2")}), pushInfo{endpointsOnly: true})
	next, ok := recvWithin(t, rx, 5*time.Second)
	require.True(t, ok, "no EDS update")
	require.Equal(t, resourcev3.EndpointType, next.TypeUrl)
	require.NotEqual(t, eds.VersionInfo, next.VersionInfo)
}
