package xds

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshd/meshd/discovery/file"
	"github.com/meshd/meshd/internal/model"
)

const (
	shopEnvoy = "sidecar~10.1.1.10~frontend-v1-0.shop~shop.svc.cluster.local"
	bankGRPC  = "sidecar~10.1.3.9~teller.bank~bank.svc.cluster.local"
	// bankSidecar keeps bank's proxies to their own namespace.
	bankSidecar = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: bank}
spec:
  egress:
  - hosts: ["./*"]
`
)

// demoServer serves hack/demo (plus bankSidecar) with two proxies
// connected: an Envoy sidecar of shop's frontend and a proxyless gRPC
// client of bank.
func demoServer(t *testing.T) (*Server, *model.Store) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"namespaces.yaml", "shop-frontend.yaml", "shop-reviews.yaml", "shop-reviews-routing.yaml", "bank.yaml"} {
		b, err := os.ReadFile("../hack/demo/" + name)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(dir+"/"+name, b, 0o644))
	}
	require.NoError(t, os.WriteFile(dir+"/bank-sidecar.yaml", []byte(bankSidecar), 0o644))
	store := model.NewStore()
	require.NoError(t, file.New(dir, store).Load())
	require.Empty(t, store.Current().Errors())
	s, conn := startServer(t, store)
	connectProxy(t, conn, shopEnvoy, map[string]any{"NAMESPACE": "shop", "LABELS": map[string]any{"app": "frontend", "version": "v1"}})
	connectProxy(t, conn, bankGRPC, map[string]any{"NAMESPACE": "bank", "GENERATOR": "grpc"})
	require.Eventually(t, func() bool { return len(s.Proxies()) == 2 }, 5*time.Second, 10*time.Millisecond)
	return s, store
}

// connectProxy opens an ADS stream as node and asks for its clusters.
func connectProxy(t *testing.T, conn *grpc.ClientConn, id string, md map[string]any) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	meta, err := structpb.NewStruct(md)
	require.NoError(t, err)
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{Node: &core.Node{Id: id, Metadata: meta}, TypeUrl: resourcev3.ClusterType}))
	_, ok := recvWithin(t, receiver(stream), 5*time.Second)
	require.True(t, ok, "no CDS response for %s", id)
}

func decode(t *testing.T, yaml string) []model.Change {
	t.Helper()
	changes, notes := file.DecodeChanges("change.yaml", []byte(yaml), file.ChangeOptions{})
	require.Empty(t, notes)
	return changes
}

// canary is the demo's reviews split moved from 80/20 to 50/50.
func canary(t *testing.T) string {
	b, err := os.ReadFile("../hack/demo/shop-reviews-routing.yaml")
	require.NoError(t, err)
	out := strings.Replace(strings.Replace(string(b), "weight: 80", "weight: 50", 1), "weight: 20", "weight: 50", 1)
	require.NotEqual(t, string(b), out)
	return out
}

// TestWhatIfCanaryChangesOnlyTheRoutesOfScopesThatSeeThem: a weight
// change shows as the changed route configurations of the scope that
// sees reviews, with a diff of the weights; bank's scope, kept to its
// namespace, does not change. Nothing the server serves changes.
func TestWhatIfCanaryChangesOnlyTheRoutesOfScopesThatSeeThem(t *testing.T) {
	s, store := demoServer(t)
	s.mu.Lock()
	index, push, served := s.index, s.lastPush, s.scopes["sidecar|envoy|shop|app=frontend,version=v1"].snap
	s.mu.Unlock()
	require.NotNil(t, served)

	rep, err := s.WhatIf(store.Current(), decode(t, canary(t)), WhatIfSelector{})
	require.NoError(t, err)
	assert.True(t, rep.Changed)
	assert.False(t, rep.Rejected)
	assert.Empty(t, rep.Errors)
	assert.Equal(t, []WhatIfObject{
		{Kind: model.KindDestinationRule, Namespace: "shop", Name: "reviews", Action: "unchanged"},
		{Kind: model.KindVirtualService, Namespace: "shop", Name: "reviews", Action: "update"},
	}, rep.Objects)
	assert.Equal(t, 2, rep.ScopesSelected)
	assert.Equal(t, 1, rep.ScopesChanged)
	require.Len(t, rep.Scopes, 1)
	sc := rep.Scopes[0]
	assert.Equal(t, "sidecar|envoy|shop|app=frontend,version=v1", sc.Scope)
	assert.Equal(t, []string{shopEnvoy}, sc.Proxies)
	require.Len(t, sc.Types, 1)
	rt := sc.Types[0]
	assert.Equal(t, "routes", rt.Type)
	assert.Equal(t, []string{"9080", "9090"}, rt.Changed)
	assert.Empty(t, rt.Added)
	assert.Empty(t, rt.Removed)
	assert.Contains(t, rt.Diff, "--- routes/9080 (current)\n+++ routes/9080 (with the change)\n@@ ")
	assert.Regexp(t, `(?m)^-\s+weight: 80\n\+\s+weight: 50$`, rt.Diff)
	assert.Positive(t, rt.BytesPerProxy)
	assert.Equal(t, rt.BytesPerProxy, sc.Bytes)
	assert.Equal(t, 1, rep.ProxiesPushed)
	assert.Equal(t, sc.Bytes, rep.BytesPushed)

	again, err := s.WhatIf(store.Current(), decode(t, canary(t)), WhatIfSelector{})
	require.NoError(t, err)
	assert.Equal(t, rep, again, "deterministic")

	s.mu.Lock()
	assert.Same(t, index, s.index, "the served Index is kept")
	assert.Equal(t, push, s.lastPush, "nothing was pushed")
	assert.Same(t, served, s.scopes["sidecar|envoy|shop|app=frontend,version=v1"].snap)
	s.mu.Unlock()
	vs, _ := store.Current().Object(model.KindVirtualService, "shop", "reviews")
	assert.Contains(t, vs.(*model.Config).Source, "shop-reviews-routing.yaml", "the Store is untouched")
}

// TestWhatIfSelectors: --all lists unchanged scopes, --namespace only its
// own, --proxy its scope; an unknown proxy and two selectors are errors.
func TestWhatIfSelectors(t *testing.T) {
	s, store := demoServer(t)
	changes := decode(t, canary(t))
	rep, err := s.WhatIf(store.Current(), changes, WhatIfSelector{All: true})
	require.NoError(t, err)
	require.Len(t, rep.Scopes, 2)
	assert.True(t, rep.Scopes[0].Changed)
	assert.Equal(t, "sidecar|grpc|bank|", rep.Scopes[1].Scope)
	assert.False(t, rep.Scopes[1].Changed)
	assert.Empty(t, rep.Scopes[1].Types)
	assert.Equal(t, []string{bankGRPC}, rep.Scopes[1].Proxies)

	rep, err = s.WhatIf(store.Current(), changes, WhatIfSelector{Namespace: "bank"})
	require.NoError(t, err)
	assert.False(t, rep.Changed)
	assert.Equal(t, 1, rep.ScopesSelected)
	assert.Empty(t, rep.Scopes)

	rep, err = s.WhatIf(store.Current(), changes, WhatIfSelector{Proxy: "frontend-v1-0.shop"})
	require.NoError(t, err)
	assert.Equal(t, 1, rep.ScopesSelected)
	assert.True(t, rep.Changed)

	_, err = s.WhatIf(store.Current(), changes, WhatIfSelector{Proxy: "nobody.shop"})
	require.ErrorIs(t, err, ErrProxyNotConnected)
	_, err = s.WhatIf(store.Current(), changes, WhatIfSelector{Proxy: "x", All: true})
	require.ErrorContains(t, err, "at most one")
	_, err = New(Options{}).WhatIf(nil, changes, WhatIfSelector{})
	require.ErrorIs(t, err, ErrNotReady)
}

const alsConfigMap = `apiVersion: v1
kind: ConfigMap
metadata: {name: istio, namespace: istio-system}
data:
  mesh: |
    extensionProviders:
    - name: als
      envoyHttpAls: {service: als-collector.monitoring.svc.cluster.local, port: 9000}
    defaultProviders:
      accessLogging: [als]
`

const alsCollector = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: als-collector, namespace: monitoring}
spec:
  hosts: [als-collector.monitoring.svc.cluster.local]
  ports: [{number: 9000, name: grpc-als, protocol: GRPC}]
  resolution: DNS
  location: MESH_INTERNAL
`

// TestWhatIfAccessLogService is the bank's outage: turning ALS on to a
// collector not in the registry is rejected, naming the collector; with
// the collector's ServiceEntry the sidecar gets its cluster and listeners
// that log to it.
func TestWhatIfAccessLogService(t *testing.T) {
	s, store := demoServer(t)
	rep, err := s.WhatIf(store.Current(), decode(t, alsConfigMap), WhatIfSelector{})
	require.NoError(t, err)
	assert.True(t, rep.Rejected)
	assert.False(t, rep.Changed, "no listener references the missing cluster")
	require.Len(t, rep.Errors, 1)
	e := rep.Errors[0]
	assert.Equal(t, model.KindMeshConfig, e.Kind)
	assert.Equal(t, "extensionProviders", e.Field)
	assert.Contains(t, e.Message, `"als-collector.monitoring.svc.cluster.local" is not in the registry`)
	assert.Equal(t, []WhatIfObject{{Kind: model.KindMeshConfig, Name: "mesh", Action: "create"}}, rep.Objects)

	rep, err = s.WhatIf(store.Current(), decode(t, alsConfigMap+"---\n"+alsCollector), WhatIfSelector{})
	require.NoError(t, err)
	assert.False(t, rep.Rejected, "%v", rep.Errors)
	assert.True(t, rep.Changed)
	require.Len(t, rep.Scopes, 1)
	types := map[string]WhatIfType{}
	for _, ty := range rep.Scopes[0].Types {
		types[ty.Type] = ty
	}
	assert.Equal(t, []string{"outbound|9000||als-collector.monitoring.svc.cluster.local"}, types["clusters"].Added)
	require.NotEmpty(t, types["listeners"].Changed)
	assert.Regexp(t, `(?m)^\+\s+clusterName: outbound\|9000\|\|als-collector.monitoring.svc.cluster.local$`, types["listeners"].Diff)
}

// TestWhatIfErrorsIgnoreTheSourceOfTheChange: an error the mesh already
// has is not new because the change's document reports it; an error
// cleared by the change is listed as cleared.
func TestWhatIfErrorsIgnoreTheSourceOfTheChange(t *testing.T) {
	old := model.ObjectError{Kind: model.KindVirtualService, Namespace: "shop", Name: "a", Source: "a.yaml#1", Field: "spec.http", Message: "bad"}
	same := old
	same.Source = "change.yaml#1"
	gone := model.ObjectError{Kind: model.KindSidecar, Namespace: "shop", Name: "b", Message: "worse"}
	fresh := model.ObjectError{Source: "change.yaml#2", Message: "invalid YAML"}
	added, cleared := newErrors([]model.ObjectError{old, gone}, []model.ObjectError{same, fresh, fresh})
	assert.Equal(t, []model.ObjectError{fresh}, added)
	assert.Equal(t, []model.ObjectError{gone}, cleared)
}

// TestStampCreation: an updated object keeps its creation time, a new one
// gets now only when the mesh has creation times (Kubernetes).
func TestStampCreation(t *testing.T) {
	then, now := time.Unix(1000, 0), time.Unix(2000, 0)
	store := model.NewStore()
	store.Apply([]model.Change{{Kind: model.KindVirtualService, Namespace: "ns", Name: "a",
		Object: &model.Config{Kind: model.KindVirtualService, Namespace: "ns", Name: "a", CreatedAt: then}}})
	vs := func(name string) model.Change {
		return model.Change{Kind: model.KindVirtualService, Namespace: "ns", Name: name,
			Object: &model.Config{Kind: model.KindVirtualService, Namespace: "ns", Name: name}}
	}
	in := []model.Change{vs("a"), vs("b")}
	out := stampCreation(store.Current(), in, now)
	assert.Equal(t, then, out[0].Object.(*model.Config).CreatedAt)
	assert.Equal(t, now, out[1].Object.(*model.Config).CreatedAt)
	assert.True(t, in[0].Object.(*model.Config).CreatedAt.IsZero(), "the changes are not modified")

	out = stampCreation(model.NewStore().Current(), in, now)
	assert.True(t, out[1].Object.(*model.Config).CreatedAt.IsZero(), "file provider: no creation times")
}

// TestWhatIfDuringPushes: what-ifs run while the server pushes (race
// detector), and one at a time.
func TestWhatIfDuringPushes(t *testing.T) {
	s, store := demoServer(t)
	changes := decode(t, canary(t))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 5 {
			s.ForcePush()
		}
	}()
	for range 5 {
		rep, err := s.WhatIf(store.Current(), changes, WhatIfSelector{})
		require.NoError(t, err)
		assert.Equal(t, 1, rep.ScopesChanged)
	}
	<-done

	whatIfSlot <- struct{}{} // another what-if is running
	_, err := s.WhatIf(store.Current(), changes, WhatIfSelector{})
	<-whatIfSlot
	require.ErrorIs(t, err, ErrWhatIfBusy)
}
