package fleet

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestParseResponse reads both protocols' responses from their encoding
// as protobuf wrote them.
func TestParseResponse(t *testing.T) {
	a, err := anypb.New(&discovery.DiscoveryRequest{VersionInfo: "x"})
	require.NoError(t, err)
	sotw, err := proto.Marshal(&discovery.DiscoveryResponse{VersionInfo: "v7", TypeUrl: resourcev3.ClusterType, Nonce: "n1",
		Resources: []*anypb.Any{a, a, a}})
	require.NoError(t, err)
	r, err := parseResponse(sotw, false)
	require.NoError(t, err)
	assert.Equal(t, rawResponse{typeURL: resourcev3.ClusterType, version: "v7", nonce: "n1", resources: 3, bytes: len(sotw)}, r)

	delta, err := proto.Marshal(&discovery.DeltaDiscoveryResponse{SystemVersionInfo: "s", TypeUrl: resourcev3.EndpointType,
		Nonce: "n2", RemovedResources: []string{"gone"},
		Resources: []*discovery.Resource{{Name: "a", Version: "va", Resource: a}, {Name: "b", Version: "vb"}}})
	require.NoError(t, err)
	r, err = parseResponse(delta, true)
	require.NoError(t, err)
	assert.Equal(t, rawResponse{typeURL: resourcev3.EndpointType, version: "s", nonce: "n2", resources: 2, bytes: len(delta),
		named: []namedVersion{{"a", "va"}, {"b", "vb"}}, removed: []string{"gone"}}, r)

	_, err = parseResponse([]byte{0x0a, 0x05, 'x'}, false)
	assert.Error(t, err, "a truncated field")
}

// TestResumeSotW: after a restart, every proxy reconnects presenting each
// type's last version and its subscriptions, ACKs what it is sent, and the
// reconnection counts it per type (this fake server resends everything at
// the same version: all of it is counted as unchanged).
func TestResumeSotW(t *testing.T) {
	f := &fakeADS{resources: mesh()}
	addr, _ := serve(t, f)
	fl, err := Start(context.Background(), Options{Address: addr, Proxies: 6, StreamsPerConn: 4, Namespaces: []string{"a", "b"}})
	require.NoError(t, err)
	wait(t, fl)
	held := fl.Held()
	fl.Close()
	require.Len(t, held, 6)
	for _, h := range held {
		assert.Equal(t, map[string]string{"cds": "v1", "eds": "v1", "lds": "v1", "rds": "v1"}, h.Versions)
		assert.Equal(t, []string{"8080"}, h.Subscribed["rds"])
		assert.Len(t, h.Resources["cds"], 2)
	}

	restarted := &fakeADS{resources: mesh()}
	addr2, lis := serve(t, restarted)
	got, err := fl.Resume(context.Background(), held, ResumeOptions{Address: addr2, StreamsPerConn: 4,
		Quiet: 200 * time.Millisecond, Timeout: 10 * time.Second})
	require.NoError(t, err)
	assert.EqualValues(t, 2, lis.n.Load(), "6 streams, 4 per connection")
	assert.Equal(t, 6, got.Proxies)
	assert.Equal(t, 6, got.Reconnected)
	assert.Equal(t, 6, got.Streams)
	assert.Equal(t, 6, got.PushedProxies)
	assert.Equal(t, map[string]int{"cds": 6, "eds": 6, "lds": 6, "rds": 6}, got.Responses)
	assert.Equal(t, map[string]int{"cds": 12, "eds": 12, "lds": 6, "rds": 6}, got.Resources)
	assert.Equal(t, got.Resources, got.Unchanged, "resent at the versions held")
	assert.Equal(t, map[string]int{"cds": 12, "eds": 12, "lds": 6, "rds": 6}, got.Presented)
	assert.Positive(t, got.Bytes["cds"])
	restarted.mu.Lock()
	defer restarted.mu.Unlock()
	require.Len(t, restarted.streams, 6)
	for _, s := range restarted.streams {
		assert.Equal(t, 1, s.acks[resourcev3.ClusterType], "ACKed")
		assert.Equal(t, []string{"8080"}, s.subscribe[resourcev3.RouteType], "subscription presented")
		assert.Equal(t, []string{"outbound|8080||a.ns.svc.cluster.local", "outbound|8080||b.ns.svc.cluster.local"},
			s.subscribe[resourcev3.EndpointType])
	}
	assert.Contains(t, []string{"a", "b"}, restarted.streams[0].metadata["NAMESPACE"], "the node is presented again")
}

// fakeDelta serves delta ADS: each subscription is answered with the
// type's resources (version "v-<name>") except those the request's
// initial_resource_versions already hold at that version. It records the
// initial_resource_versions it was presented, by node and type.
type fakeDelta struct {
	discovery.UnimplementedAggregatedDiscoveryServiceServer
	resources map[string][]proto.Message

	mu        sync.Mutex
	presented map[string]map[string]map[string]string // node → type URL → name → version
	sent      int
}

func (f *fakeDelta) DeltaAggregatedResources(s discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	node, nonce := "", 0
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		if req.GetNode() != nil {
			node = req.GetNode().GetId()
		}
		if req.GetResponseNonce() != "" {
			continue
		}
		f.mu.Lock()
		if f.presented[node] == nil {
			f.presented[node] = map[string]map[string]string{}
		}
		f.presented[node][req.GetTypeUrl()] = req.GetInitialResourceVersions()
		f.mu.Unlock()
		resp := &discovery.DeltaDiscoveryResponse{TypeUrl: req.GetTypeUrl()}
		for _, m := range f.resources[req.GetTypeUrl()] {
			name := resourceName(m)
			if req.GetInitialResourceVersions()[name] == "v-"+name {
				continue
			}
			a, _ := anypb.New(m)
			resp.Resources = append(resp.Resources, &discovery.Resource{Name: name, Version: "v-" + name, Resource: a})
		}
		if len(resp.Resources) == 0 {
			continue
		}
		nonce++
		resp.Nonce = strconv.Itoa(nonce)
		f.mu.Lock()
		f.sent += len(resp.Resources)
		f.mu.Unlock()
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

func resourceName(m proto.Message) string {
	switch r := m.(type) {
	case interface{ GetClusterName() string }:
		return r.GetClusterName()
	case interface{ GetName() string }:
		return r.GetName()
	}
	return ""
}

// TestResumeDelta: with TrackVersions, delta proxies keep the version of
// everything they hold and present it as initial_resource_versions when
// they reconnect; a server that honours it sends nothing.
func TestResumeDelta(t *testing.T) {
	srv := &fakeDelta{resources: mesh(), presented: map[string]map[string]map[string]string{}}
	lisAddr := serveDelta(t, srv)
	fl, err := Start(context.Background(), Options{Address: lisAddr, Proxies: 3, StreamsPerConn: 1, Delta: true, TrackVersions: true})
	require.NoError(t, err)
	wait(t, fl)
	held := fl.Held()
	fl.Close()
	want := map[string]map[string]string{
		"cds": {"outbound|8080||a.ns.svc.cluster.local": "v-outbound|8080||a.ns.svc.cluster.local",
			"outbound|8080||b.ns.svc.cluster.local": "v-outbound|8080||b.ns.svc.cluster.local"},
		"eds": {"outbound|8080||a.ns.svc.cluster.local": "v-outbound|8080||a.ns.svc.cluster.local",
			"outbound|8080||b.ns.svc.cluster.local": "v-outbound|8080||b.ns.svc.cluster.local"},
		"lds": {"0.0.0.0_8080": "v-0.0.0.0_8080"},
		"rds": {"8080": "v-8080"},
	}
	for _, h := range held {
		assert.Equal(t, want, h.Resources)
	}
	srv.mu.Lock()
	srv.presented, srv.sent = map[string]map[string]map[string]string{}, 0
	srv.mu.Unlock()

	got, err := fl.Resume(context.Background(), held, ResumeOptions{Address: lisAddr, StreamsPerConn: 2, Delta: true,
		Quiet: 200 * time.Millisecond, Timeout: 10 * time.Second})
	require.NoError(t, err)
	assert.Equal(t, 3, got.Reconnected)
	assert.Zero(t, got.PushedProxies)
	assert.Zero(t, sumMap(got.Bytes))
	assert.Equal(t, map[string]int{"cds": 6, "eds": 6, "lds": 3, "rds": 3}, got.Presented)
	srv.mu.Lock()
	defer srv.mu.Unlock()
	assert.Zero(t, srv.sent)
	require.Len(t, srv.presented, 3)
	for _, p := range fl.Proxies() {
		assert.Equal(t, want["eds"], srv.presented[p.NodeID][resourcev3.EndpointType], "proxy %d", p.Index)
		assert.Equal(t, want["lds"], srv.presented[p.NodeID][resourcev3.ListenerType])
	}
}

func sumMap(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func serveDelta(t *testing.T, f *fakeDelta) string {
	addr, _ := serveWith(t, func(g *grpc.Server) { discovery.RegisterAggregatedDiscoveryServiceServer(g, f) })
	return addr
}

// TestResumeRetriesRefusedStreams: a restarted server that refuses each
// proxy's first stream (its stream rate limit) sees it again after a
// backoff, and the reconnection counts the refusals.
func TestResumeRetriesRefusedStreams(t *testing.T) {
	addr, _ := serve(t, &fakeADS{resources: mesh()})
	fl, err := Start(context.Background(), Options{Address: addr, Proxies: 4})
	require.NoError(t, err)
	wait(t, fl)
	held := fl.Held()
	fl.Close()

	restarted := &fakeADS{resources: mesh(), refuse: true, seen: map[string]bool{}}
	addr2, _ := serve(t, restarted)
	got, err := fl.Resume(context.Background(), held, ResumeOptions{Address: addr2, Quiet: 200 * time.Millisecond,
		Timeout: 10 * time.Second, BackoffBase: 10 * time.Millisecond})
	require.NoError(t, err)
	assert.Equal(t, 4, got.Reconnected)
	assert.Equal(t, 8, got.Streams)
	assert.Equal(t, 4, got.Refused)
	assert.Equal(t, map[string]int{"cds": 4, "eds": 4, "lds": 4, "rds": 4}, got.Responses)
}
