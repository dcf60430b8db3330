package xds

import (
	"context"
	"net"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshd/meshd/internal/model"
)

func testStore(t *testing.T) *model.Store {
	t.Helper()
	st := model.NewStore()
	st.Apply([]model.Change{
		{Kind: model.KindService, Namespace: "shop", Name: "frontend", Object: &model.Service{
			Hostname: "frontend.shop.svc.cluster.local", Name: "frontend", Namespace: "shop", Origin: model.KindService,
			Ports: []model.Port{{Name: "http", Port: 8080, Protocol: model.ProtocolHTTP}}, VIPs: []string{"10.96.0.1"},
		}},
		{Kind: model.KindEndpointSlice, Namespace: "shop", Name: "frontend-1", Object: &model.EndpointSet{
			Name: "frontend-1", Namespace: "shop", ServiceName: "frontend",
			Endpoints: []model.Endpoint{{Address: "10.1.0.1", Ports: map[string]uint32{"http": 8080}, Ready: true, Serving: true}},
		}},
	})
	return st
}

// startServer serves ADS for store's current snapshot on a loopback port.
func startServer(t *testing.T, store *model.Store) (*Server, *grpc.ClientConn) {
	t.Helper()
	return startServerWith(t, store)
}

// startServerWith is startServer with more gRPC server options.
func startServerWith(t *testing.T, store *model.Store, opts ...grpc.ServerOption) (*Server, *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := New(Options{})
	s.PushSnapshot(store.Current())
	g := grpc.NewServer(append([]grpc.ServerOption{Codec()}, opts...)...)
	s.Register(ctx, g)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = g.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(); cancel(); g.Stop() })
	return s, conn
}

func node(t *testing.T, id, ns string) *core.Node {
	md, err := structpb.NewStruct(map[string]any{"NAMESPACE": ns})
	require.NoError(t, err)
	return &core.Node{Id: id, Metadata: md}
}

// receiver reads the stream on one goroutine and hands responses over a channel.
func receiver(stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient) <-chan *discovery.DiscoveryResponse {
	ch := make(chan *discovery.DiscoveryResponse, 16)
	go func() {
		defer close(ch)
		for {
			r, err := stream.Recv()
			if err != nil {
				return
			}
			ch <- r
		}
	}()
	return ch
}

func recvWithin(t *testing.T, ch <-chan *discovery.DiscoveryResponse, d time.Duration) (*discovery.DiscoveryResponse, bool) {
	t.Helper()
	select {
	case r, ok := <-ch:
		require.True(t, ok, "stream closed")
		return r, true
	case <-time.After(d):
		return nil, false
	}
}

func TestSotWServesACKsAndDoesNotResendAfterNACK(t *testing.T) {
	s, conn := startServer(t, testStore(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	n := node(t, "sidecar~10.1.0.9~client.shop~shop.svc.cluster.local", "shop")
	rx := receiver(stream)
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{Node: n, TypeUrl: resourcev3.ClusterType}))
	resp, ok := recvWithin(t, rx, 5*time.Second)
	require.True(t, ok, "no CDS response")
	require.NotEmpty(t, resp.VersionInfo)
	require.Len(t, resp.Resources, 4, "frontend + BlackHole + Passthrough + InboundPassthrough (every sidecar, as from istiod)")

	// NACK it: the server must not resend the same version.
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{
		TypeUrl: resourcev3.ClusterType, ResponseNonce: resp.Nonce,
		ErrorDetail: &rpcstatus.Status{Code: 3, Message: "cluster rejected for test"},
	}))
	_, again := recvWithin(t, rx, 500*time.Millisecond)
	assert.False(t, again, "a NACKed version must not be resent in a loop")
	assert.Equal(t, 1.0, testutil.ToFloat64(s.m.Rejects.WithLabelValues("cds")))
	ps := s.Proxies()
	require.Len(t, ps, 1)
	assert.Equal(t, "cluster rejected for test", ps[0].Types["cds"].LastNack)
	assert.False(t, ps[0].Types["cds"].Synced())

	// EDS: subscribe, receive, ACK; the status shows it synced.
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.EndpointType,
		ResourceNames: []string{"outbound|8080||frontend.shop.svc.cluster.local"}}))
	eds, ok := recvWithin(t, rx, 5*time.Second)
	require.True(t, ok, "no EDS response")
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.EndpointType,
		VersionInfo: eds.VersionInfo, ResponseNonce: eds.Nonce,
		ResourceNames: []string{"outbound|8080||frontend.shop.svc.cluster.local"}}))
	require.Eventually(t, func() bool { return s.Proxies()[0].Types["eds"].Synced() }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, eds.VersionInfo, s.Proxies()[0].Types["eds"].AckedVersion)
}

func TestProxiesOfOneScopeShareASnapshotAndVersionsAreContentHashes(t *testing.T) {
	store := testStore(t)
	s, conn := startServer(t, store)
	versions := map[string]string{}
	for _, id := range []string{"a.shop", "b.shop", "c.other"} {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
		require.NoError(t, err)
		ns := id[2:]
		require.NoError(t, stream.Send(&discovery.DiscoveryRequest{
			Node: node(t, "sidecar~10.1.0.9~"+id+"~"+ns+".svc.cluster.local", ns), TypeUrl: resourcev3.ListenerType}))
		resp, ok := recvWithin(t, receiver(stream), 5*time.Second)
		require.True(t, ok)
		versions[id] = resp.VersionInfo
	}
	assert.Equal(t, versions["a.shop"], versions["b.shop"])
	s.mu.Lock()
	assert.Len(t, s.scopes, 2, "two namespaces, two scopes")
	s.mu.Unlock()

	// A second server built from the same snapshot agrees on every version.
	other := New(Options{})
	other.PushSnapshot(store.Current())
	sc := model.Scope{Type: model.SidecarProxy, Namespace: "shop"}
	other.acquireScope(sc, false)
	s.mu.Lock()
	mine := s.scopes[sc.Key()].snap
	s.mu.Unlock()
	other.mu.Lock()
	theirs := other.scopes[sc.Key()].snap
	other.mu.Unlock()
	for _, typ := range typeURLs {
		assert.Equal(t, mine.GetVersion(typ), theirs.GetVersion(typ), typ)
	}
}

func TestInvalidNodeIsRefused(t *testing.T) {
	_, conn := startServer(t, testStore(t))
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	require.NoError(t, err)
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: "not-an-istio-node"}, TypeUrl: resourcev3.ClusterType}))
	_, err = stream.Recv()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "want 4 fields")
}

func TestDeltaServesAndTracksACK(t *testing.T) {
	s, conn := startServer(t, testStore(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&discovery.DeltaDiscoveryRequest{
		Node: node(t, "sidecar~10.1.0.9~d.shop~shop.svc.cluster.local", "shop"), TypeUrl: resourcev3.ClusterType,
		ResourceNamesSubscribe: []string{"*"},
	}))
	resp, err := stream.Recv()
	require.NoError(t, err)
	names := []string{}
	s.mu.Lock()
	require.Len(t, s.scopes, 1)
	var key string
	for k := range s.scopes {
		key = k
	}
	s.mu.Unlock()
	for _, r := range resp.Resources {
		names = append(names, r.Name)
		assert.NotEmpty(t, r.Version, "delta resources carry per-resource versions")
		// The version is the content hash the resource was marshalled with
		// for state-of-the-world streams (not recomputed by go-control-plane).
		s.shared.mu.Lock()
		m, ok := s.shared.scopes[key].types[resourcev3.ClusterType].get(r.Name)
		s.shared.mu.Unlock()
		require.True(t, ok, r.Name)
		assert.Equal(t, m.hash, r.Version, r.Name)
	}
	assert.ElementsMatch(t, []string{"BlackHoleCluster", "InboundPassthroughCluster", "PassthroughCluster", "outbound|8080||frontend.shop.svc.cluster.local"}, names)
	require.NoError(t, stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: resp.Nonce}))
	require.Eventually(t, func() bool {
		ps := s.Proxies()
		return len(ps) == 1 && ps[0].Delta && ps[0].Types["cds"].Synced()
	}, 5*time.Second, 10*time.Millisecond)
}

// slice returns the change setting service name's only EndpointSlice to addrs.
func slice(name string, addrs ...string) model.Change {
	es := &model.EndpointSet{Name: name + "-1", Namespace: "shop", ServiceName: name}
	for _, a := range addrs {
		es.Endpoints = append(es.Endpoints, model.Endpoint{Address: a, Ports: map[string]uint32{"http": 8080}, Ready: true, Serving: true})
	}
	return model.Change{Kind: model.KindEndpointSlice, Namespace: "shop", Name: name + "-1", Object: es}
}

// TestEndpointFastPath: an endpoint-only change leaves every scope's
// listeners, routes and clusters alone, and reaches only the streams that
// watch the changed cluster, with only its ClusterLoadAssignment.
func TestEndpointFastPath(t *testing.T) {
	store := testStore(t)
	store.Apply([]model.Change{
		{Kind: model.KindService, Namespace: "shop", Name: "backend", Object: &model.Service{
			Hostname: "backend.shop.svc.cluster.local", Name: "backend", Namespace: "shop", Origin: model.KindService,
			Ports: []model.Port{{Name: "http", Port: 8080, Protocol: model.ProtocolHTTP}}, VIPs: []string{"10.96.0.2"},
		}},
		slice("backend", "10.1.1.1"),
	})
	s, conn := startServer(t, store)
	const front, back = "outbound|8080||frontend.shop.svc.cluster.local", "outbound|8080||backend.shop.svc.cluster.local"

	// One proxy watches frontend's endpoints only.
	ch, resp, ack := edsStream(t, conn, front)
	require.Len(t, resp.Resources, 1)
	ack(resp)
	sc := model.Scope{Type: model.SidecarProxy, Generator: "envoy", Namespace: "shop"}
	s.acquireScope(sc, false)
	before := s.scopes[sc.Key()].snap

	// backend's endpoints change: nothing for this proxy.
	s.push(store.Apply([]model.Change{slice("backend", "10.1.1.1", "10.1.1.2")}), pushInfo{endpointsOnly: true})
	assert.Equal(t, []string{back}, s.LastPush().Clusters)
	_, got := recvWithin(t, ch, 300*time.Millisecond)
	assert.False(t, got, "a proxy not watching backend must be sent nothing")

	// frontend's endpoints change: only its assignment is sent.
	s.push(store.Apply([]model.Change{slice("frontend", "10.1.0.1", "10.1.0.2")}), pushInfo{endpointsOnly: true})
	resp, ok := recvWithin(t, ch, 5*time.Second)
	require.True(t, ok)
	require.Len(t, resp.Resources, 1)
	cla := &endpoint.ClusterLoadAssignment{}
	require.NoError(t, resp.Resources[0].UnmarshalTo(cla))
	assert.Equal(t, front, cla.ClusterName)
	assert.Len(t, cla.Endpoints[0].LbEndpoints, 2)
	ack(resp)

	assert.Zero(t, s.LastPush().ScopesBuilt, "endpoints that change only assignments rebuild no scope")

	// Scopes keep their listener, route and cluster versions.
	after := s.scopes[sc.Key()].snap
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.ListenerType, resourcev3.RouteType} {
		assert.Equal(t, before.GetVersion(typ), after.GetVersion(typ), typ)
	}

	// An identical assignment (e.g. removing an endpoint that was already
	// terminating) is not a change: nothing is sent.
	s.push(store.Apply([]model.Change{slice("frontend", "10.1.0.2", "10.1.0.1")}), pushInfo{endpointsOnly: true})
	assert.Zero(t, s.LastPush().EndpointsUpdated)
	_, got = recvWithin(t, ch, 300*time.Millisecond)
	assert.False(t, got, "unchanged endpoints must not be re-sent")

	// A new service account can change clusters (ISTIO_MUTUAL verifies
	// them): the scopes are rebuilt.
	sa := slice("frontend", "10.1.0.1", "10.1.0.2")
	sa.Object.(*model.EndpointSet).Endpoints[0].ServiceAccount = "frontend-v2"
	s.push(store.Apply([]model.Change{sa}), pushInfo{endpointsOnly: true})
	assert.Equal(t, 1, s.LastPush().ScopesBuilt, "a service account change rebuilds the scopes")
}

// TestPropagationMetric: a change's time from the provider seeing it to the
// proxy's ACK is observed per type.
func TestPropagationMetric(t *testing.T) {
	store := testStore(t)
	s, conn := startServer(t, store)
	const front = "outbound|8080||frontend.shop.svc.cluster.local"
	ch, resp, send := edsStream(t, conn, front)
	send(resp)
	time.Sleep(20 * time.Millisecond) // the stream is now older than the change below
	seen := time.Now()
	s.push(store.Apply([]model.Change{slice("frontend", "10.1.0.1", "10.1.0.2")}), pushInfo{endpointsOnly: true, origin: seen})
	resp, ok := recvWithin(t, ch, 5*time.Second)
	require.True(t, ok)
	time.Sleep(50 * time.Millisecond)
	send(resp)
	require.Eventually(t, func() bool {
		return testutil.CollectAndCount(s.m.Propagation) == 1
	}, 5*time.Second, 10*time.Millisecond, "the ACK must be observed once")
	var m dto.Metric
	require.NoError(t, s.m.Propagation.WithLabelValues("eds").(prometheus.Metric).Write(&m))
	assert.Equal(t, uint64(1), m.GetHistogram().GetSampleCount())
	assert.GreaterOrEqual(t, m.GetHistogram().GetSampleSum(), 0.05, "from the change to the ACK, at least the 50ms the client waited")
}

// TestEDSReRequestIsAnswered: Envoy re-requests EDS, with the nonce it has
// already acknowledged, after CDS updated a cluster; the cluster stays
// warming until it is answered, so it must be answered at once.
func TestEDSReRequestIsAnswered(t *testing.T) {
	_, conn := startServer(t, testStore(t))
	const front = "outbound|8080||frontend.shop.svc.cluster.local"
	ch, resp, ack := edsStream(t, conn, front)
	ack(resp)
	_, got := recvWithin(t, ch, 300*time.Millisecond)
	require.False(t, got, "an ACK is not answered")

	ack(resp) // the same request again: a re-request
	again, ok := recvWithin(t, ch, 5*time.Second)
	require.True(t, ok, "a re-request is answered")
	require.Len(t, again.Resources, 1)
}

// edsStream opens an ADS stream as a sidecar of shop subscribing to the
// named assignments and returns its responses, the first one, and a
// function that ACKs a response (sending it again is a re-request).
func edsStream(t *testing.T, conn *grpc.ClientConn, names ...string) (<-chan *discovery.DiscoveryResponse, *discovery.DiscoveryResponse, func(*discovery.DiscoveryResponse)) {
	t.Helper()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(context.Background())
	require.NoError(t, err)
	ch := receiver(stream)
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{
		Node: node(t, "sidecar~10.1.0.9~a.shop~shop.svc.cluster.local", "shop"), TypeUrl: resourcev3.EndpointType,
		ResourceNames: names,
	}))
	resp, ok := recvWithin(t, ch, 5*time.Second)
	require.True(t, ok)
	ack := func(r *discovery.DiscoveryResponse) {
		require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.EndpointType,
			ResourceNames: names, VersionInfo: r.VersionInfo, ResponseNonce: r.Nonce}))
	}
	return ch, resp, ack
}
