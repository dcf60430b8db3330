package xds

import (
	"context"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// TestCompactReleasesMemosAndKeepsServing: once no scope is being built,
// the translation memos and outputs are released; the config dump is the
// same built again, and a push after it still serves the proxy.
func TestCompactReleasesMemosAndKeepsServing(t *testing.T) {
	c := connectSidecar(t)
	s, stream, rx, first, id := c.s, c.stream, c.rx, c.first, c.id
	before, err := s.ConfigDump(id)
	require.NoError(t, err)

	require.False(t, s.compact(time.Hour), "a scope was just built")
	s.mu.Lock()
	s.noteBuild() // whatever the background compactor did meanwhile
	s.mu.Unlock()
	require.True(t, s.compact(0))
	require.False(t, s.compact(0), "released once until the next build")
	s.mu.Lock()
	for _, ss := range s.scopes {
		require.Nil(t, ss.out, "the scope's output is released")
	}
	s.mu.Unlock()

	after, err := s.ConfigDump(id)
	require.NoError(t, err)
	require.True(t, proto.Equal(before, after), "the dump is the same, built again")

	// A forced push rebuilds from the released Index: same content, nothing resent.
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResponseNonce: first.Nonce, VersionInfo: first.VersionInfo}))
	require.True(t, s.ForcePush())
	_, again := recvWithin(t, rx, 500*time.Millisecond)
	require.False(t, again, "rebuilt after compaction, the config is unchanged: nothing to send")
}

// TestCompactedOutputIsTheLastGoodBuild: a scope's output released by
// compact is built again from the Index of its last good build, not from
// a newer Index whose build of the scope failed or was skipped.
func TestCompactedOutputIsTheLastGoodBuild(t *testing.T) {
	c := connectSidecar(t)
	s, store, id := c.s, c.store, c.id
	before, err := s.ConfigDump(id)
	require.NoError(t, err)
	s.mu.Lock()
	s.noteBuild()
	s.mu.Unlock()
	require.True(t, s.compact(0))

	// A newer Index the scope was not (successfully) rebuilt from: another
	// service would add a cluster.
	next := store.Apply([]model.Change{{Kind: model.KindService, Namespace: "shop", Name: "extra", Object: &model.Service{
		Hostname: "extra.shop.svc.cluster.local", Name: "extra", Namespace: "shop", Origin: model.KindService,
		Ports: []model.Port{{Name: "http", Port: 9090, Protocol: model.ProtocolHTTP}}, VIPs: []string{"10.96.0.9"}}}})
	s.mu.Lock()
	s.index = translate.NewIndex(next, translate.Options{})
	s.mu.Unlock()

	after, err := s.ConfigDump(id)
	require.NoError(t, err)
	require.True(t, proto.Equal(before, after), "the dump is what the scope serves, not the newer Index's translation")
}

// sidecarConn is a server with one connected sidecar that holds its clusters.
type sidecarConn struct {
	s      *Server
	store  *model.Store
	stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	rx     <-chan *discovery.DiscoveryResponse
	first  *discovery.DiscoveryResponse // its CDS response
	id     string
}

// connectSidecar starts a server on testStore, connects a sidecar of
// namespace shop and waits for its clusters.
func connectSidecar(t *testing.T) sidecarConn {
	t.Helper()
	c := sidecarConn{store: testStore(t), id: "sidecar~10.1.0.9~client.shop~shop.svc.cluster.local"}
	s, conn := startServer(t, c.store)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	c.s, c.stream, c.rx = s, stream, receiver(stream)
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{Node: node(t, c.id, "shop"), TypeUrl: resourcev3.ClusterType}))
	first, ok := recvWithin(t, c.rx, 5*time.Second)
	require.True(t, ok, "no CDS response")
	c.first = first
	return c
}

// TestQuietAfterSendingReleases: free heap is returned once responses
// were sent since the last release and none for the idle time.
func TestQuietAfterSendingReleases(t *testing.T) {
	c := connectSidecar(t) // its responses were sent
	require.False(t, c.s.quietAfterSending(time.Time{}, time.Hour, 0), "sent within the idle time")
	require.True(t, c.s.quietAfterSending(time.Time{}, 0, 0))
	require.False(t, c.s.quietAfterSending(time.Now(), 0, 0), "nothing sent since the last release")
	require.False(t, c.s.quietAfterSending(time.Time{}, 0, 1<<62), "not enough free heap to be worth a collection")
}
