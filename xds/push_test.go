package xds

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
)

// TestEndpointPushBuildsScopesNeverBuilt: a gateway that connected before
// the first push (meshd still syncing) must get its config from the first
// push even when that push is an endpoint-only one.
func TestEndpointPushBuildsScopesNeverBuilt(t *testing.T) {
	store := testStore(t)
	s := New(Options{})
	gw := model.Scope{Type: model.Router, Namespace: "shop"}
	s.acquireScope(gw, false) // no index yet: nothing built
	s.push(store.Apply([]model.Change{slice("frontend", "10.1.0.1", "10.1.0.2")}), pushInfo{endpointsOnly: true})
	s.mu.Lock()
	built := s.scopes[gw.Key()].snap != nil
	s.mu.Unlock()
	assert.True(t, built, "the gateway scope must be built by the first push")
	s.mu.Lock()
	published := s.shared.scopes[gw.Key()] != nil && s.shared.scopes[gw.Key()].types[resourcev3.ClusterType] != nil
	s.mu.Unlock()
	assert.True(t, published, "and published for its streams")
}

// TestConfigDumpDuringPushes: /debug/config_dump reads a scope's output while
// pushes rewrite it (run with -race).
func TestConfigDumpDuringPushes(t *testing.T) {
	s, conn := startServer(t, testStore(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	const id = "sidecar~10.1.0.9~a.shop~shop.svc.cluster.local"
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{Node: node(t, id, "shop"), TypeUrl: resourcev3.ClusterType}))
	_, ok := recvWithin(t, receiver(stream), 5*time.Second)
	require.True(t, ok)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 20 {
			s.ForcePush()
		}
	}()
	for range 20 {
		_, err := s.ConfigDump(id)
		require.NoError(t, err)
	}
	wg.Wait()
}

func TestRebuildOrderAlternatesNamespaces(t *testing.T) {
	var todo []*scopeState
	for _, key := range []string{"a/1", "a/2", "a/3", "b/1", "c/1", "c/2"} {
		ns, labels, _ := strings.Cut(key, "/")
		todo = append(todo, &scopeState{scope: model.Scope{Namespace: ns, Labels: labels}})
	}
	var got []string
	for _, ss := range byNamespaceRoundRobin(todo) {
		got = append(got, ss.scope.Namespace+"/"+ss.scope.Labels)
	}
	require.Equal(t, []string{"a/1", "b/1", "c/1", "a/2", "c/2", "a/3"}, got)
}
