package translate_test

import (
	"os"
	"path/filepath"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// sharedMesh: api (namespace b) and web (namespace a) share a VIP, so
// their route configuration may name it once; other's VirtualService
// routes namespace a's clients to api and everyone else by default.
const sharedMesh = `
apiVersion: v1
kind: Service
metadata: {name: api, namespace: b, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  clusterIP: 10.96.0.50
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: a, creationTimestamp: "2026-01-02T00:00:00Z"}
spec:
  clusterIP: 10.96.0.50
  ports: [{name: http, port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: other, namespace: b, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  clusterIP: 10.96.0.51
  ports: [{name: http, port: 8080}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: other, namespace: b, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  hosts: [other.b.svc.cluster.local]
  http:
  - match: [{sourceNamespace: a}]
    route: [{destination: {host: api.b.svc.cluster.local}}]
  - route: [{destination: {host: other.b.svc.cluster.local}}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: ext, namespace: b, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  hosts: [ext.example.com]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{name: http, number: 8080, protocol: HTTP}]
  endpoints: [{address: ext.example.com}]
`

// TestSharedAcrossViews: scopes of one Index share the values that come
// out the same (virtual hosts, clusters, whole Outputs) and only those;
// a domain two services claim is served once.
func TestSharedAcrossViews(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.yaml")
	require.NoError(t, os.WriteFile(in, []byte(sharedMesh), 0o644))
	x := translate.NewIndex(loadSnapshot(t, in), translate.Options{})
	build := func(key string) *translate.Output {
		sc, err := model.ParseScopeKey(key)
		require.NoError(t, err)
		out := translate.Build(x, sc)
		require.NoError(t, translate.ValidateIn(x, out), key)
		require.NoError(t, translate.Validate(out), key)
		return out
	}
	inA, inC := build("sidecar|envoy|a"), build("sidecar|envoy|c")
	vhosts := func(out *translate.Output) map[string]*route.VirtualHost {
		m := map[string]*route.VirtualHost{}
		require.Len(t, out.Routes, 1)
		seen := map[string]string{}
		for _, vh := range out.Routes[0].GetVirtualHosts() {
			m[vh.GetName()] = vh
			for _, d := range vh.GetDomains() {
				require.Empty(t, seen[d], "domain %s of %s also in %s", d, vh.GetName(), seen[d])
				seen[d] = vh.GetName()
			}
		}
		require.Equal(t, "api.b.svc.cluster.local:8080", seen["10.96.0.50"], "the older service keeps the VIP")
		return m
	}
	a, c := vhosts(inA), vhosts(inC)
	api, other := "api.b.svc.cluster.local:8080", "other.b.svc.cluster.local:8080"
	require.Same(t, a[api], c[api], "api's virtual host is the same for namespaces a and c")
	require.NotSame(t, a[other], c[other], "other's routes depend on the client's namespace")
	require.Equal(t, "outbound|8080||api.b.svc.cluster.local", a[other].GetRoutes()[0].GetRoute().GetCluster())
	require.Equal(t, "outbound|8080||other.b.svc.cluster.local", c[other].GetRoutes()[0].GetRoute().GetCluster())
	web := "web.a.svc.cluster.local:8080"
	require.Contains(t, a[web].GetDomains(), "web", "short name in its own namespace")
	require.NotContains(t, c[web].GetDomains(), "web")
	require.NotSame(t, a[web], c[web])

	clusters := map[string]bool{}
	for _, cl := range inA.Clusters {
		clusters[cl.Name] = true
		for _, cc := range inC.Clusters {
			if cc.Name == cl.Name && cl.Name != translate.BlackHoleCluster && cl.Name != translate.PassthroughCluster {
				require.Same(t, cl, cc, "cluster %s", cl.Name)
			}
		}
	}
	require.True(t, clusters["outbound|8080||api.b.svc.cluster.local"])

	// Two workloads of namespace a backing no service: one Output.
	require.Same(t, build("sidecar|envoy|a|app=x"), build("sidecar|envoy|a|app=y"))
}

// TestCarriedAcrossIndexes: after a VirtualService change the next Index
// reuses the previous one's default-route virtual hosts and the clusters
// of services without a DestinationRule (also after ReleaseMemos), builds
// the rest anew, and its output equals a fresh Index's. After an endpoint
// change, EDS clusters without DestinationRule are still carried, but not
// a DNS cluster (its assignment is part of it).
func TestCarriedAcrossIndexes(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.yaml")
	require.NoError(t, os.WriteFile(in, []byte(sharedMesh), 0o644))
	store := loadStore(t, in)
	sc, err := model.ParseScopeKey("sidecar|envoy|c")
	require.NoError(t, err)
	prev := translate.NewIndex(store.Current(), translate.Options{})
	before := translate.Build(prev, sc)
	prev.ReleaseMemos()

	o, ok := store.Current().Object(model.KindVirtualService, "b", "other")
	require.True(t, ok)
	vs := *o.(*model.Config)
	spec := proto.Clone(vs.Spec).(*networking.VirtualService)
	spec.Http[1].Route[0].Destination.Host = "api.b.svc.cluster.local"
	vs.Spec = spec
	snap := store.Apply([]model.Change{{Kind: model.KindVirtualService, Namespace: "b", Name: "other", Object: &vs}})
	x := translate.NewIndexFrom(prev, snap, translate.Options{})
	after := translate.Build(x, sc)
	require.NoError(t, translate.ValidateIn(x, after))
	fresh := translate.Build(translate.NewIndex(snap, translate.Options{}), sc)
	requireSameOutput(t, fresh, after)

	vh := func(out *translate.Output, name string) *route.VirtualHost {
		for _, v := range out.Routes[0].GetVirtualHosts() {
			if v.GetName() == name {
				return v
			}
		}
		require.Failf(t, "no virtual host", "%s", name)
		return nil
	}
	api, other := "api.b.svc.cluster.local:8080", "other.b.svc.cluster.local:8080"
	require.Same(t, vh(before, api), vh(after, api), "default route: carried")
	require.NotSame(t, vh(before, other), vh(after, other), "its VirtualService changed")
	require.Equal(t, "outbound|8080||api.b.svc.cluster.local", vh(after, other).GetRoutes()[0].GetRoute().GetCluster())
	cl := func(out *translate.Output, name string) *cluster.Cluster {
		for _, c := range out.Clusters {
			if c.GetName() == name {
				return c
			}
		}
		require.Failf(t, "no cluster", "%s", name)
		return nil
	}
	const apiCluster = "outbound|8080||api.b.svc.cluster.local"
	require.Same(t, cl(before, apiCluster), cl(after, apiCluster), "no DestinationRule, only routing changed: carried")

	set := &model.EndpointSet{Name: "api-1", Namespace: "b", ServiceName: "api", Endpoints: []model.Endpoint{
		{Address: "10.1.0.1", Ports: map[string]uint32{"http": 8080}, Ready: true, Serving: true}}}
	snap = store.Apply([]model.Change{{Kind: model.KindEndpointSlice, Namespace: "b", Name: "api-1", Object: set}})
	y := translate.NewIndexFrom(x, snap, translate.Options{})
	next := translate.Build(y, sc)
	requireSameOutput(t, translate.Build(translate.NewIndex(snap, translate.Options{}), sc), next)
	require.Same(t, vh(after, api), vh(next, api))
	require.Same(t, cl(after, apiCluster), cl(next, apiCluster), "an EDS cluster does not depend on endpoints")
	const extCluster = "outbound|8080||ext.example.com"
	require.Same(t, cl(before, extCluster), cl(after, extCluster), "only routing changed: carried")
	require.NotSame(t, cl(after, extCluster), cl(next, extCluster), "endpoints changed: a DNS cluster is built anew")
}

// requireSameOutput checks that got's resources equal want's.
func requireSameOutput(t *testing.T, want, got *translate.Output) {
	t.Helper()
	eq := func(kind string, a, b []proto.Message) {
		require.Len(t, b, len(a), kind)
		for i := range a {
			require.True(t, proto.Equal(a[i], b[i]), "%s %d differs", kind, i)
		}
	}
	msgs := func(out *translate.Output) (ls, rs, cs []proto.Message) {
		for _, l := range out.Listeners {
			ls = append(ls, l)
		}
		for _, r := range out.Routes {
			rs = append(rs, r)
		}
		for _, c := range out.Clusters {
			cs = append(cs, c)
		}
		return
	}
	wl, wr, wc := msgs(want)
	gl, gr, gc := msgs(got)
	eq("listener", wl, gl)
	eq("route", wr, gr)
	eq("cluster", wc, gc)
}
