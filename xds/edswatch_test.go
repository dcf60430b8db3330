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
