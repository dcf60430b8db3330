package xds

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/internal/xdsclient"
)

const (
	deltaNode = "sidecar~10.1.0.9~d.shop~shop.svc.cluster.local"
	frontCLA  = "outbound|8080||frontend.shop.svc.cluster.local"
	backCLA   = "outbound|8080||backend.shop.svc.cluster.local"
)

// deltaTestClient is a delta stream with its responses on a channel.
type deltaTestClient struct {
	t      *testing.T
	stream discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	rx     chan *discovery.DeltaDiscoveryResponse
	first  bool
}

func openDelta(t *testing.T, conn *grpc.ClientConn) *deltaTestClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	require.NoError(t, err)
	c := &deltaTestClient{t: t, stream: stream, rx: make(chan *discovery.DeltaDiscoveryResponse, 16), first: true}
	go func() {
		defer close(c.rx)
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			c.rx <- r
		}
	}()
	return c
}

// send sends req, with the node on the stream's first request.
func (c *deltaTestClient) send(req *discovery.DeltaDiscoveryRequest) {
	c.t.Helper()
	if c.first {
		req.Node = node(c.t, deltaNode, "shop")
		c.first = false
	}
	require.NoError(c.t, c.stream.Send(req))
}

// recv returns the next response, failing after 5 s.
func (c *deltaTestClient) recv() *discovery.DeltaDiscoveryResponse {
	c.t.Helper()
	select {
	case r, ok := <-c.rx:
		require.True(c.t, ok, "stream closed")
		return r
	case <-time.After(5 * time.Second):
		c.t.Fatal("no response")
		return nil
	}
}

// quiet asserts nothing is received for a while.
func (c *deltaTestClient) quiet(msg string) {
	c.t.Helper()
	select {
	case r := <-c.rx:
		c.t.Fatalf("%s: got %s %v removed %v", msg, ShortType(r.GetTypeUrl()), resourceNames(r), r.GetRemovedResources())
	case <-time.After(300 * time.Millisecond):
	}
}

func (c *deltaTestClient) ack(r *discovery.DeltaDiscoveryResponse) {
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: r.TypeUrl, ResponseNonce: r.Nonce})
}

func resourceNames(r *discovery.DeltaDiscoveryResponse) []string {
	var out []string
	for _, x := range r.GetResources() {
		out = append(out, x.GetName())
	}
	sort.Strings(out)
	return out
}

func versions(r *discovery.DeltaDiscoveryResponse) map[string]string {
	out := map[string]string{}
	for _, x := range r.GetResources() {
		out[x.GetName()] = x.GetVersion()
	}
	return out
}

func backendService() model.Change {
	return model.Change{Kind: model.KindService, Namespace: "shop", Name: "backend", Object: &model.Service{
		Hostname: "backend.shop.svc.cluster.local", Name: "backend", Namespace: "shop", Origin: model.KindService,
		Ports: []model.Port{{Name: "http", Port: 8080, Protocol: model.ProtocolHTTP}}, VIPs: []string{"10.96.0.2"},
	}}
}

// TestDeltaWildcardSendsOnlyChangesAndRemovals: a wildcard CDS stream
// gets every cluster, then only a new one, then the removal of a deleted
// one (removed_resources), and nothing for a push that changes nothing.
func TestDeltaWildcardSendsOnlyChangesAndRemovals(t *testing.T) {
	store := testStore(t)
	s, conn := startServer(t, store)
	c := openDelta(t, conn)
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType})
	r := c.recv()
	assert.Equal(t, []string{"BlackHoleCluster", "InboundPassthroughCluster", "PassthroughCluster", frontCLA}, resourceNames(r))
	assert.Empty(t, r.RemovedResources)
	c.ack(r)

	s.PushSnapshot(store.Current())
	c.quiet("an unchanged push")

	s.PushSnapshot(store.Apply([]model.Change{backendService(), slice("backend", "10.1.1.1")}))
	r = c.recv()
	assert.Equal(t, []string{backCLA}, resourceNames(r), "only the new cluster")
	c.ack(r)

	s.PushSnapshot(store.Apply([]model.Change{{Kind: model.KindService, Namespace: "shop", Name: "backend"}}))
	r = c.recv()
	assert.Empty(t, r.Resources)
	assert.Equal(t, []string{backCLA}, r.RemovedResources)
	c.ack(r)
	require.Eventually(t, func() bool {
		ps := s.Proxies()
		return len(ps) == 1 && ps[0].Delta && ps[0].Types["cds"].Synced()
	}, 5*time.Second, 10*time.Millisecond)
}

// TestDeltaExplicitSubscribeUnsubscribe: EDS by name: only the names
// subscribed, changes of others not sent, a later subscription answered
// with just its name, an unsubscribed name no longer sent, a removed
// assignment the client holds in removed_resources.
func TestDeltaExplicitSubscribeUnsubscribe(t *testing.T) {
	store := testStore(t)
	store.Apply([]model.Change{backendService(), slice("backend", "10.1.1.1")})
	s, conn := startServer(t, store)
	c := openDelta(t, conn)
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: []string{frontCLA}})
	r := c.recv()
	require.Equal(t, []string{frontCLA}, resourceNames(r))
	c.ack(r)

	s.push(store.Apply([]model.Change{slice("backend", "10.1.1.1", "10.1.1.2")}), pushInfo{endpointsOnly: true})
	c.quiet("a change of an assignment not subscribed")

	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: []string{backCLA}})
	r = c.recv()
	require.Equal(t, []string{backCLA}, resourceNames(r), "only the new subscription")
	cla := &endpoint.ClusterLoadAssignment{}
	require.NoError(t, r.Resources[0].Resource.UnmarshalTo(cla))
	assert.Len(t, cla.Endpoints[0].LbEndpoints, 2)
	c.ack(r)

	s.push(store.Apply([]model.Change{slice("frontend", "10.1.0.1", "10.1.0.2")}), pushInfo{endpointsOnly: true})
	r = c.recv()
	require.Equal(t, []string{frontCLA}, resourceNames(r))
	c.ack(r)

	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesUnsubscribe: []string{frontCLA}})
	c.quiet("an unsubscription")
	s.push(store.Apply([]model.Change{slice("frontend", "10.1.0.3")}), pushInfo{endpointsOnly: true})
	c.quiet("a change of an unsubscribed assignment")

	s.PushSnapshot(store.Apply([]model.Change{{Kind: model.KindService, Namespace: "shop", Name: "backend"}}))
	r = c.recv()
	assert.Empty(t, r.Resources)
	assert.Equal(t, []string{backCLA}, r.RemovedResources)
}

// TestDeltaReconnectWithInitialVersions: a stream reconnecting with the
// versions it holds (what a proxy does after meshd restarts or on another
// replica: versions are content hashes) is sent nothing it holds; only a
// resource whose version differs, and the removal of one that is gone.
func TestDeltaReconnectWithInitialVersions(t *testing.T) {
	store := testStore(t)
	_, conn := startServer(t, store)
	c := openDelta(t, conn)
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType})
	cds := c.recv()
	c.ack(cds)
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: []string{frontCLA}})
	eds := c.recv()
	c.ack(eds)
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType})
	lds := c.recv()
	c.ack(lds)

	// Another server process (a restart, a replica) with the same config.
	_, conn2 := startServer(t, store)
	d := openDelta(t, conn2)
	d.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, InitialResourceVersions: versions(cds)})
	d.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: []string{frontCLA},
		InitialResourceVersions: versions(eds)})
	d.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ListenerType, InitialResourceVersions: versions(lds)})
	d.quiet("a reconnect holding everything")

	// Holding a stale version of one cluster and one that is gone.
	held := versions(cds)
	held["PassthroughCluster"] = "stale"
	held["outbound|9090||gone.shop.svc.cluster.local"] = "x"
	e := openDelta(t, conn2)
	e.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, InitialResourceVersions: held})
	r := e.recv()
	assert.Equal(t, []string{"PassthroughCluster"}, resourceNames(r))
	assert.Equal(t, []string{"outbound|9090||gone.shop.svc.cluster.local"}, r.RemovedResources)
}

// TestDeltaNACKIsNotResentUntilChanged: a NACKed response is recorded
// (tracker, pilot_total_xds_rejects) and not resent; a change resends.
func TestDeltaNACKIsNotResentUntilChanged(t *testing.T) {
	store := testStore(t)
	s, conn := startServer(t, store)
	c := openDelta(t, conn)
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResourceNamesSubscribe: []string{frontCLA}})
	r := c.recv()
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.EndpointType, ResponseNonce: r.Nonce,
		ErrorDetail: &rpcstatus.Status{Code: 3, Message: "rejected"}})
	c.quiet("a NACK")
	require.Eventually(t, func() bool {
		ps := s.Proxies()
		return len(ps) == 1 && ps[0].Types["eds"].Nacks == 1
	}, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1.0, testutil.ToFloat64(s.m.Rejects.WithLabelValues("eds")))

	s.push(store.Apply([]model.Change{slice("frontend", "10.1.0.1", "10.1.0.2")}), pushInfo{endpointsOnly: true})
	r = c.recv()
	assert.Equal(t, []string{frontCLA}, resourceNames(r), "a change is sent")
	c.ack(r)
	c.quiet("after the ACK")
}

// TestDeltaSecretsRefusedUnauthenticated: SDS over the plaintext port is
// not answered; the stream's other types are.
func TestDeltaSecretsRefusedUnauthenticated(t *testing.T) {
	s, conn := startServer(t, testStore(t))
	c := openDelta(t, conn)
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.SecretType, ResourceNamesSubscribe: []string{"kubernetes://gw"}})
	c.quiet("SDS on an unauthenticated stream")
	assert.Equal(t, 1.0, testutil.ToFloat64(s.m.AuthFailures.WithLabelValues("secrets_unauthenticated")))
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType})
	assert.NotEmpty(t, c.recv().Resources)
}

// TestDeltaStreamsShareMarshalledBytes: the streams of one scope are sent
// the published Any values themselves (their bytes referenced by the
// codec), not copies.
func TestDeltaStreamsShareMarshalledBytes(t *testing.T) {
	s, _ := startServer(t, testStore(t))
	sc := model.Scope{Type: model.SidecarProxy, Generator: "envoy", Namespace: "shop"}
	s.acquireScope(sc, true)
	p := s.shared.publishedType(sc.Key(), resourcev3.ClusterType)
	require.NotNil(t, p)
	a, b := newDeltaType(resourcev3.ClusterType), newDeltaType(resourcev3.ClusterType)
	a.wildcard, b.wildcard = true, true
	sa, _ := a.diff(p, nil, true)
	sb, _ := b.diff(p, nil, true)
	require.Len(t, sa, len(p.names))
	for i := range sa {
		assert.Same(t, p.anys[i], sa[i].any)
		assert.Same(t, sa[i], sb[i])
	}
}

// TestDeltaWildcardUnsubscribe: "*" unsubscribed leaves the names
// subscribed explicitly; "*" subscribed later sends what is missing.
func TestDeltaWildcardUnsubscribe(t *testing.T) {
	_, conn := startServer(t, testStore(t))
	c := openDelta(t, conn)
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResourceNamesSubscribe: []string{"PassthroughCluster"}})
	r := c.recv()
	assert.Equal(t, []string{"PassthroughCluster"}, resourceNames(r))
	c.ack(r)
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResourceNamesSubscribe: []string{"*"}})
	r = c.recv()
	assert.Equal(t, []string{"BlackHoleCluster", "InboundPassthroughCluster", frontCLA}, resourceNames(r))
	c.ack(r)
	c.send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResourceNamesUnsubscribe: []string{"*"}})
	c.quiet("unsubscribing the wildcard")
}

// TestDeltaXDSClientConformance: the project's own xDS client in delta
// mode (subscribing as Envoy: wildcard CDS and LDS, EDS and RDS by the
// names they reference) is configured completely, follows an endpoint
// change, a new service (a new subscription) and a removal (unsubscribe
// and removed_resources), and NACKs nothing.
func TestDeltaXDSClientConformance(t *testing.T) {
	store := testStore(t)
	s, conn := startServer(t, store)
	c, err := xdsclient.StartWith(conn, deltaNode, map[string]any{"NAMESPACE": "shop"}, xdsclient.Options{Delta: true})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	wait := func(what string, cond func(*xdsclient.Client) bool) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, c.Wait(ctx, cond), what)
	}
	wait("configured", func(c *xdsclient.Client) bool { return c.Complete() && c.Holds("eds", frontCLA) })

	s.PushSnapshot(store.Apply([]model.Change{backendService(), slice("backend", "10.1.1.1")}))
	wait("the new service", func(c *xdsclient.Client) bool {
		return c.Complete() && c.Holds("cds", backCLA) && c.Holds("eds", backCLA)
	})
	edsBefore := c.Stats()["eds"].Responses
	s.push(store.Apply([]model.Change{slice("backend", "10.1.1.1", "10.1.1.2")}), pushInfo{endpointsOnly: true})
	wait("the endpoint change", func(c *xdsclient.Client) bool { return c.Stats()["eds"].Responses > edsBefore })

	s.PushSnapshot(store.Apply([]model.Change{{Kind: model.KindService, Namespace: "shop", Name: "backend"}}))
	wait("the removal", func(c *xdsclient.Client) bool {
		return c.Complete() && !c.Holds("cds", backCLA) && !c.Holds("eds", backCLA)
	})
	assert.NotContains(t, c.Subscribed("eds"), backCLA, "unsubscribed")
	for typ, st := range c.Stats() {
		assert.Zero(t, st.Nacks, typ)
	}
	require.NoError(t, c.Err())
}

// pub is a publication of a type with the given name → hash.
func pub(kv ...string) *published {
	p := &published{version: fmt.Sprint(kv)}
	for i := 0; i < len(kv); i += 2 {
		p.names = append(p.names, kv[i])
		p.ms = append(p.ms, &wire{hash: kv[i+1], any: &anypb.Any{TypeUrl: kv[i]}})
	}
	return p
}

// sentNames are the names of resources pub made (each Any's type URL).
func sentNames(rs []marshalled) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.any.TypeUrl)
	}
	sort.Strings(out)
	return out
}

// TestDeltaTypeDiff: the per-stream comparison, wildcard and explicit,
// with initial versions, changes, removals and subscription changes.
func TestDeltaTypeDiff(t *testing.T) {
	// A wildcard reconnecting holding a (current), b (stale), z (gone).
	w := newDeltaType(resourcev3.ClusterType)
	w.apply(&discovery.DeltaDiscoveryRequest{InitialResourceVersions: map[string]string{"a": "1", "b": "0", "z": "9"}}, true)
	assert.False(t, w.answerFirst, "a reconnect holding resources is owed no empty answer")
	p1 := pub("a", "1", "b", "1", "c", "1")
	send, removed := w.diff(p1, nil, true)
	assert.Equal(t, []string{"b", "c"}, sentNames(send))
	assert.Equal(t, []string{"z"}, removed)
	assert.Same(t, p1, w.base, "holds the publication exactly")
	assert.Empty(t, w.res, "no map of what it holds")

	// The next publication: a changed, b gone, d new, c unchanged.
	p2 := pub("a", "2", "c", "1", "d", "1")
	send, removed = w.diff(p2, nil, true)
	assert.Equal(t, []string{"a", "d"}, sentNames(send))
	assert.Equal(t, []string{"b"}, removed)
	send, removed = w.diff(p2, nil, true)
	assert.Empty(t, send)
	assert.Empty(t, removed)

	// Subscribing c by name, then dropping the wildcard: c stays held.
	w.apply(&discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"c"}}, false)
	w.apply(&discovery.DeltaDiscoveryRequest{ResourceNamesUnsubscribe: []string{"*"}}, false)
	assert.Nil(t, w.base)
	assert.Equal(t, map[string]deltaRes{"c": {hash: "1", sub: true}}, w.res)
	send, removed = w.diff(pub("a", "3", "c", "2"), nil, true)
	assert.Equal(t, []string{"c"}, sentNames(send), "only what it subscribes to")
	assert.Empty(t, removed)

	// Explicit: a new name is compared alone; a removed held one is
	// removed; an unsubscribed one is forgotten.
	e := newDeltaType(resourcev3.RouteType)
	added, full := e.apply(&discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"a"}}, true)
	assert.Equal(t, []string{"a"}, added)
	assert.True(t, full)
	send, _ = e.diff(p2, nil, true)
	assert.Equal(t, []string{"a"}, sentNames(send))
	added, full = e.apply(&discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"x", "d"}}, false)
	assert.False(t, full)
	send, removed = e.diff(p2, added, false)
	assert.Equal(t, []string{"d"}, sentNames(send), "x is not served: nothing said of it")
	assert.Empty(t, removed)
	send, removed = e.diff(pub("a", "2", "x", "1"), nil, true)
	assert.Equal(t, []string{"x"}, sentNames(send))
	assert.Equal(t, []string{"d"}, removed)
	e.apply(&discovery.DeltaDiscoveryRequest{ResourceNamesUnsubscribe: []string{"a"}}, false)
	send, removed = e.diff(pub("x", "1"), nil, true)
	assert.Empty(t, send)
	assert.Empty(t, removed, "a was unsubscribed: the client forgot it")
}

// TestDeltaWildcardComparesPresentedInPlace: a wildcard reconnecting
// while also subscribing a name explicitly is compared with what it
// presented where the request holds it (no copy per stream): sent what
// differs, told what is gone ("*" is no name), and afterwards it keeps
// only its explicit subscription and the publication as held.
func TestDeltaWildcardComparesPresentedInPlace(t *testing.T) {
	w := newDeltaType(resourcev3.ClusterType)
	presented := map[string]string{"a": "1", "b": "0", "gone": "9", "*": "x", "empty": ""}
	w.apply(&discovery.DeltaDiscoveryRequest{InitialResourceVersions: presented}, true)
	w.apply(&discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{"c"}}, false)
	require.Empty(t, w.res["a"].hash, "nothing copied before the comparison")
	p := pub("a", "1", "b", "1", "c", "1")
	send, removed := w.diff(p, nil, true)
	assert.Equal(t, []string{"b", "c"}, sentNames(send))
	assert.Equal(t, []string{"gone"}, removed)
	assert.Nil(t, w.initial)
	assert.Same(t, p, w.base)
	assert.Equal(t, map[string]deltaRes{"c": {sub: true}}, w.res)
	assert.Len(t, presented, 5, "the request's map is read, not altered")
}
