package xds

import (
	"strconv"
	"testing"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// edsSet applies assignments named by name → content (a number, in the
// assignment's policy) and removals to e, as edsCache.update does.
func edsSet(t *testing.T, e *deltaEDS, set map[string]int, removed ...string) {
	t.Helper()
	ms, clas := map[string]marshalled{}, map[string]*endpoint.ClusterLoadAssignment{}
	for n, v := range set {
		cla := &endpoint.ClusterLoadAssignment{ClusterName: n, Policy: &endpoint.ClusterLoadAssignment_Policy{OverprovisioningFactor: wrapperspb.UInt32(uint32(v))}}
		m, err := marshal(nil, resourcev3.EndpointType, cla)
		require.NoError(t, err)
		ms[n], clas[n] = m, cla
	}
	e.update(ms, clas, removed)
}

// edsSync applies req to s (first: the stream's first request) and syncs.
func edsSync(e *deltaEDS, s *edsSub, req *discovery.DeltaDiscoveryRequest, first bool) (sent []string, removed []string) {
	added := s.apply(req, first)
	e.mu.RLock()
	defer e.mu.RUnlock()
	send, removed := s.sync(e, added)
	for _, m := range send {
		sent = append(sent, nameOf(m))
	}
	return sent, removed
}

// nameOf is the name a marshalled assignment carries.
func nameOf(m marshalled) string {
	cla := &endpoint.ClusterLoadAssignment{}
	if err := m.any.UnmarshalTo(cla); err != nil {
		panic(err)
	}
	return cla.GetClusterName()
}

// hashOf is the hash e serves n with.
func hashOf(e *deltaEDS, n string) string {
	m, _ := e.get(n)
	return m.hash
}

// TestEDSSubscriptionFollowsGenerations: a delta stream's EDS state is a
// shared name set and a generation; what it is sent is exactly what
// changed in what it subscribes to, the names it newly subscribes to,
// and removals of what it held — also across several generations, after
// a lag past the change log, and when it reconnects presenting versions.
func TestEDSSubscriptionFollowsGenerations(t *testing.T) {
	e := newDeltaEDS()
	edsSet(t, e, map[string]int{"a": 1, "b": 1, "c": 1, "d": 1})

	// A reconnect presenting a current, b stale, gone stale-and-gone; it
	// subscribes to a, b, gone and x (not served).
	s := &edsSub{}
	sent, removed := edsSync(e, s, &discovery.DeltaDiscoveryRequest{
		ResourceNamesSubscribe:  []string{"a", "b", "gone", "x"},
		InitialResourceVersions: map[string]string{"a": hashOf(e, "a"), "b": "old", "gone": "old"},
	}, true)
	assert.Equal(t, []string{"b"}, sent)
	assert.Equal(t, []string{"gone"}, removed)
	assert.Nil(t, s.initial, "presented versions are dropped once compared")

	// Another stream subscribing the same names shares the set.
	s2 := &edsSub{}
	edsSync(e, s2, &discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"a", "b", "gone", "x"}}, true)
	if len(s.list) >= minSharedList {
		assert.Same(t, &s.list[0], &s2.list[0])
	}

	// A change to a and c (c not subscribed), b removed, x appears.
	edsSet(t, e, map[string]int{"a": 2, "c": 2, "x": 1}, "b")
	sent, removed = edsSync(e, s, &discovery.DeltaDiscoveryRequest{}, false)
	assert.ElementsMatch(t, []string{"a", "x"}, sent)
	assert.Equal(t, []string{"b"}, removed)
	sent, removed = edsSync(e, s, &discovery.DeltaDiscoveryRequest{}, false)
	assert.Empty(t, sent, "nothing changed since")
	assert.Empty(t, removed)

	// Several generations: a changes and changes back (the client holds
	// its content as of the first: nothing to send), x changes twice.
	edsSet(t, e, map[string]int{"a": 3, "x": 2})
	edsSet(t, e, map[string]int{"a": 2, "x": 3})
	sent, _ = edsSync(e, s, &discovery.DeltaDiscoveryRequest{}, false)
	assert.Equal(t, []string{"x"}, sent)

	// Subscribing d (served) and y (not), unsubscribing x: d is sent;
	// a later change to x is not.
	sent, _ = edsSync(e, s, &discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"d", "y"}, ResourceNamesUnsubscribe: []string{"x"}}, false)
	assert.Equal(t, []string{"d"}, sent)
	edsSet(t, e, map[string]int{"x": 4})
	sent, removed = edsSync(e, s, &discovery.DeltaDiscoveryRequest{}, false)
	assert.Empty(t, sent)
	assert.Empty(t, removed)
	// Re-subscribing x sends it, though unchanged since.
	sent, _ = edsSync(e, s, &discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"x"}}, false)
	assert.Equal(t, []string{"x"}, sent)

	// The wildcard subscribed later: every served name not yet held.
	sent, _ = edsSync(e, s, &discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"*"}}, false)
	assert.Equal(t, []string{"c"}, sent)
	edsSet(t, e, map[string]int{"c": 5})
	sent, _ = edsSync(e, s, &discovery.DeltaDiscoveryRequest{}, false)
	assert.Equal(t, []string{"c"}, sent, "held under the wildcard")

	// Streams that lag past the change log, by name and by wildcard, are
	// compared from the assignments served when they last synced: sent
	// exactly what changed, told exactly what went.
	lag, wild := &edsSub{}, &edsSub{}
	edsSync(e, lag, &discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"a", "c", "b"}}, true)
	edsSync(e, wild, &discovery.DeltaDiscoveryRequest{}, true)
	edsSet(t, e, map[string]int{"a": 9}, "c")
	var zs []string
	for i := range deltaChangeLog + 1 {
		z := "z" + strconv.Itoa(i)
		edsSet(t, e, map[string]int{z: 1})
		zs = append(zs, z)
	}
	sent, removed = edsSync(e, lag, &discovery.DeltaDiscoveryRequest{}, false)
	assert.Equal(t, []string{"a"}, sent)
	assert.Equal(t, []string{"c"}, removed)
	sent, removed = edsSync(e, wild, &discovery.DeltaDiscoveryRequest{}, false)
	assert.ElementsMatch(t, append([]string{"a"}, zs...), sent)
	assert.Equal(t, []string{"c"}, removed, "a wildcard is told what went too")
}

// TestEDSSubscribeAndUnsubscribeTogether: a name (or "*") both subscribed
// and unsubscribed in one request ends unsubscribed, as for the other
// types.
func TestEDSSubscribeAndUnsubscribeTogether(t *testing.T) {
	e := newDeltaEDS()
	edsSet(t, e, map[string]int{"a": 1, "b": 1})
	s := &edsSub{}
	sent, _ := edsSync(e, s, &discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"a", "b"}, ResourceNamesUnsubscribe: []string{"b"}}, true)
	assert.Equal(t, []string{"a"}, sent)
	assert.Equal(t, []string{"a"}, s.list)
	sent, _ = edsSync(e, s, &discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"*"}, ResourceNamesUnsubscribe: []string{"*"}}, false)
	assert.Empty(t, sent)
	assert.False(t, s.wildcard)
	d := newDeltaType(resourcev3.ClusterType)
	d.apply(&discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"x"}}, true)
	d.apply(&discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"*"}, ResourceNamesUnsubscribe: []string{"*"}}, false)
	assert.Equal(t, s.wildcard, d.wildcard, "the same order for every type")
}

// TestEDSWildcardReconnect: a wildcard reconnecting is sent what it
// lacks and told of what it presented that is gone ("*" is no name).
func TestEDSWildcardReconnect(t *testing.T) {
	e := newDeltaEDS()
	edsSet(t, e, map[string]int{"a": 1, "b": 1})
	s := &edsSub{}
	sent, removed := edsSync(e, s, &discovery.DeltaDiscoveryRequest{
		InitialResourceVersions: map[string]string{"a": hashOf(e, "a"), "b": "old", "gone": "old", "*": "x"},
	}, true)
	assert.Equal(t, []string{"b"}, sent)
	assert.Equal(t, []string{"gone"}, removed)
}

// TestEDSSubscriptionRepeatedNames: a name repeated in a request is
// subscribed, and sent, once.
func TestEDSSubscriptionRepeatedNames(t *testing.T) {
	e := newDeltaEDS()
	edsSet(t, e, map[string]int{"a": 1, "b": 1})
	s := &edsSub{}
	sent, _ := edsSync(e, s, &discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"a", "b", "a"}}, true)
	assert.ElementsMatch(t, []string{"a", "b"}, sent)
	assert.Equal(t, []string{"a", "b"}, s.list)
}
