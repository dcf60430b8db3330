package xds

import (
	"fmt"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func cla(name string, port uint32) *endpoint.ClusterLoadAssignment {
	return &endpoint.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{{
		LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
			Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
				Address: "10.0.0.1", PortSpecifier: &core.SocketAddress_PortValue{PortValue: port}}}},
		}}}},
	}}}
}

// openEDSWatch opens a watch and returns its response, if it got one at once.
func openEDSWatch(t *testing.T, e *sotwEDS, version string, sub streamv3.Subscription) (chan cachev3.Response, cachev3.Response) {
	ch := make(chan cachev3.Response, 1)
	_, err := e.CreateWatch(&cachev3.Request{TypeUrl: resourcev3.EndpointType, VersionInfo: version}, sub, ch)
	require.NoError(t, err)
	select {
	case r := <-ch:
		return ch, r
	default:
		return ch, nil
	}
}

func names(t *testing.T, r cachev3.Response) []string {
	d, err := r.GetDiscoveryResponse()
	require.NoError(t, err)
	var out []string
	for _, a := range d.Resources {
		c := &endpoint.ClusterLoadAssignment{}
		require.NoError(t, a.UnmarshalTo(c))
		out = append(out, c.ClusterName)
	}
	return out
}

// TestSotwEDS: a stream is sent what it subscribes to, then only what
// changed (found through the change log); a version older than the log,
// another process's, or a changed subscription gets everything subscribed.
func TestSotwEDS(t *testing.T) {
	e := newSotwEDS()
	all := map[string]*endpoint.ClusterLoadAssignment{}
	for i := range 3 {
		n := fmt.Sprintf("c%d", i)
		all[n] = cla(n, 1)
	}
	upd(t, e, all, nil)

	sub := streamv3.NewSotwSubscription([]string{"c0", "c1"}, true)
	_, r := openEDSWatch(t, e, "", sub)
	require.NotNil(t, r)
	assert.ElementsMatch(t, []string{"c0", "c1"}, names(t, r))
	v := r.GetResponseVersion()

	ch, r := openEDSWatch(t, e, v, sub)
	assert.Nil(t, r, "up to date: nothing")
	upd(t, e, map[string]*endpoint.ClusterLoadAssignment{"c2": cla("c2", 2)}, nil)
	assert.Empty(t, ch, "c2 is not subscribed")
	upd(t, e, map[string]*endpoint.ClusterLoadAssignment{"c1": cla("c1", 2)}, nil)
	require.Len(t, ch, 1)
	r = <-ch
	assert.Equal(t, []string{"c1"}, names(t, r), "only the changed assignment")

	// A request echoing an older generation gets what changed since.
	upd(t, e, map[string]*endpoint.ClusterLoadAssignment{"c0": cla("c0", 3)}, nil)
	_, r = openEDSWatch(t, e, r.GetResponseVersion(), sub)
	require.NotNil(t, r)
	assert.Equal(t, []string{"c0"}, names(t, r))

	// Older than the change log: everything subscribed is sent again.
	old := r.GetResponseVersion()
	for i := range maxChangeLog + 1 {
		upd(t, e, map[string]*endpoint.ClusterLoadAssignment{"c2": cla("c2", uint32(10+i))}, nil)
	}
	upd(t, e, map[string]*endpoint.ClusterLoadAssignment{"c1": cla("c1", 9)}, nil)
	_, r = openEDSWatch(t, e, old, sub)
	require.NotNil(t, r)
	assert.ElementsMatch(t, []string{"c0", "c1"}, names(t, r))

	// A changed subscription (a new cluster) is sent everything it names.
	grown := streamv3.NewSotwSubscription([]string{"c0", "c1", "c2"}, true)
	_, r = openEDSWatch(t, e, r.GetResponseVersion(), grown)
	require.NotNil(t, r)
	assert.ElementsMatch(t, []string{"c0", "c1", "c2"}, names(t, r))

	// A new stream echoing another process's version gets everything.
	_, r = openEDSWatch(t, e, "eds-other-7", streamv3.NewSotwSubscription([]string{"c0", "c1"}, true))
	require.NotNil(t, r)
	assert.ElementsMatch(t, []string{"c0", "c1"}, names(t, r))
}

// upd marshals changed and applies it with removed.
func upd(t *testing.T, e *sotwEDS, changed map[string]*endpoint.ClusterLoadAssignment, removed []string) {
	ms := map[string]marshalled{}
	for n, c := range changed {
		m, err := marshal(nil, resourcev3.EndpointType, c)
		require.NoError(t, err)
		ms[n] = m
	}
	e.update(ms, removed)
}

// TestSotwEDSContentVersions: versions are content hashes of what a
// subscription holds, so two instances (two replicas, or meshd before and
// after a restart) fed the same assignments agree; a stream reconnecting
// to either with the version it holds and the same subscription is sent
// nothing until something it subscribes to changes, and then only that;
// a version that does not match gets everything subscribed.
func TestSotwEDSContentVersions(t *testing.T) {
	all := map[string]*endpoint.ClusterLoadAssignment{}
	for i := range 4 {
		n := fmt.Sprintf("c%d", i)
		all[n] = cla(n, 1)
	}
	a, b := newSotwEDS(), newSotwEDS()
	upd(t, a, all, nil)
	// b reaches the same state another way: other generations, other order.
	upd(t, b, map[string]*endpoint.ClusterLoadAssignment{"c0": cla("c0", 7), "c3": all["c3"]}, nil)
	upd(t, b, map[string]*endpoint.ClusterLoadAssignment{"c0": all["c0"], "c1": all["c1"], "c2": all["c2"], "gone": cla("gone", 1)}, nil)
	upd(t, b, nil, []string{"gone"})

	subNames := []string{"c0", "c1", "c2"}
	_, ra := openEDSWatch(t, a, "", streamv3.NewSotwSubscription(subNames, true))
	_, rb := openEDSWatch(t, b, "", streamv3.NewSotwSubscription(subNames, true))
	require.NotNil(t, ra)
	require.NotNil(t, rb)
	v := ra.GetResponseVersion()
	assert.Equal(t, v, rb.GetResponseVersion(), "same content, same version on both")
	assert.Regexp(t, `^eds-[0-9a-f]{16}$`, v)
	_, rw := openEDSWatch(t, a, "", streamv3.NewSotwSubscription(nil, true))
	_, rw2 := openEDSWatch(t, b, "", streamv3.NewSotwSubscription(nil, true))
	assert.Equal(t, rw.GetResponseVersion(), rw2.GetResponseVersion(), "wildcards agree too")
	assert.NotEqual(t, v, rw.GetResponseVersion(), "another subscription, another version")

	// Reconnecting to b (a restarted meshd, another replica) with a's
	// version: nothing is sent.
	ch, r := openEDSWatch(t, b, v, streamv3.NewSotwSubscription(subNames, true))
	assert.Nil(t, r, "holds everything it subscribes to")
	upd(t, b, map[string]*endpoint.ClusterLoadAssignment{"c3": cla("c3", 2)}, nil)
	assert.Empty(t, ch, "c3 is not subscribed")
	upd(t, b, map[string]*endpoint.ClusterLoadAssignment{"c1": cla("c1", 2)}, nil)
	require.Len(t, ch, 1)
	r = <-ch
	assert.Equal(t, []string{"c1"}, names(t, r), "only the changed assignment")
	v2 := r.GetResponseVersion()
	assert.NotEqual(t, v, v2)

	// The version of that partial response names the whole subscription
	// as the stream now holds it: a reaches it with the same change, and a
	// stream of a's echoing it is sent nothing.
	upd(t, a, map[string]*endpoint.ClusterLoadAssignment{"c1": cla("c1", 2)}, nil)
	_, r = openEDSWatch(t, a, v2, streamv3.NewSotwSubscription(subNames, true))
	assert.Nil(t, r, "a partial response's version is the full set's content")

	// An acknowledgement overtaken by a change is sent only that change.
	upd(t, b, map[string]*endpoint.ClusterLoadAssignment{"c2": cla("c2", 3)}, nil)
	_, r = openEDSWatch(t, b, v2, streamv3.NewSotwSubscription(subNames, true))
	require.NotNil(t, r)
	assert.Equal(t, []string{"c2"}, names(t, r))

	// A version a sent before a change is sent only the change by a,
	// which remembers when it was current...
	_, r = openEDSWatch(t, a, v, streamv3.NewSotwSubscription(subNames, true))
	require.NotNil(t, r)
	assert.Equal(t, []string{"c1"}, names(t, r))
	// ...but everything subscribed by b, which never had that content
	// (a stale replica's version), as is a version naming other content
	// or a changed subscription.
	_, r = openEDSWatch(t, b, edsVersion(12345), streamv3.NewSotwSubscription(subNames, true))
	require.NotNil(t, r)
	assert.ElementsMatch(t, subNames, names(t, r))
	_, r = openEDSWatch(t, b, v2, streamv3.NewSotwSubscription([]string{"c0", "c1", "c2", "c3"}, true))
	require.NotNil(t, r)
	assert.ElementsMatch(t, []string{"c0", "c1", "c2", "c3"}, names(t, r))
}

// TestSotwEDSWaitsForTheFirstUpdate: a stream that connects before meshd
// has its first endpoints (a restarted meshd still syncing) is not sent an
// empty response: the first update answers it, with nothing when the
// version it holds names what it subscribes to.
func TestSotwEDSWaitsForTheFirstUpdate(t *testing.T) {
	a := newSotwEDS()
	upd(t, a, map[string]*endpoint.ClusterLoadAssignment{"c0": cla("c0", 1), "c1": cla("c1", 1)}, nil)
	_, r := openEDSWatch(t, a, "", streamv3.NewSotwSubscription([]string{"c0", "c1"}, true))
	require.NotNil(t, r)
	held := r.GetResponseVersion()

	b := newSotwEDS()
	reconnected, r := openEDSWatch(t, b, held, streamv3.NewSotwSubscription([]string{"c0", "c1"}, true))
	assert.Nil(t, r, "nothing before the first update")
	fresh, r := openEDSWatch(t, b, "", streamv3.NewSotwSubscription([]string{"c0"}, true))
	assert.Nil(t, r, "nothing before the first update")
	upd(t, b, map[string]*endpoint.ClusterLoadAssignment{"c0": cla("c0", 1), "c1": cla("c1", 1), "c2": cla("c2", 1)}, nil)
	assert.Empty(t, reconnected, "it holds what it subscribes to")
	require.Len(t, fresh, 1)
	assert.Equal(t, []string{"c0"}, names(t, <-fresh))
	upd(t, b, map[string]*endpoint.ClusterLoadAssignment{"c1": cla("c1", 2)}, nil)
	require.Len(t, reconnected, 1)
	assert.Equal(t, []string{"c1"}, names(t, <-reconnected))
}
