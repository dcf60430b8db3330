package translate_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcpproxy "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/meshd/meshd/discovery/file"
	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// paMesh: reviews (HTTP 9080 → 8080, TCP 9091 → 9191) selecting
// app=reviews, whatever the version.
const paMesh = `
apiVersion: v1
kind: Service
metadata: {name: reviews, namespace: shop, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  clusterIP: 10.96.0.20
  selector: {app: reviews}
  ports: [{name: http, port: 9080, targetPort: 8080}, {name: tcp-admin, port: 9091, targetPort: 9191}]
`

// paScope parses a scope key.
func paScope(t *testing.T, key string) model.Scope {
	t.Helper()
	sc, err := model.ParseScopeKey(key)
	require.NoError(t, err)
	return sc
}

// strictFor is a STRICT PeerAuthentication of shop selecting labels
// (nil: namespace-wide).
func strictFor(name string, labels map[string]string) *model.Config {
	spec := &security.PeerAuthentication{Mtls: &security.PeerAuthentication_MutualTLS{Mode: security.PeerAuthentication_MutualTLS_STRICT}}
	if labels != nil {
		spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: labels}
	}
	return &model.Config{Kind: model.KindPeerAuthentication, Namespace: "shop", Name: name,
		CreatedAt: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), Spec: spec}
}

// inboundChains lists virtualInbound's filter chain names, and whether a
// chain of port matches plaintext.
func inboundChains(t *testing.T, out *translate.Output, port uint32) (names []string, plaintext bool) {
	t.Helper()
	for _, l := range out.Listeners {
		if l.Name != translate.VirtualInboundListener {
			continue
		}
		for _, fc := range l.FilterChains {
			names = append(names, fc.Name)
			m := fc.GetFilterChainMatch()
			if m.GetDestinationPort().GetValue() == port && m.GetTransportProtocol() != "tls" && !refuses(fc) {
				plaintext = true
			}
		}
		return names, plaintext
	}
	require.Fail(t, "no virtualInbound")
	return nil, false
}

// refuses reports a chain whose only filter is tcp_proxy to BlackHoleCluster.
func refuses(fc *listener.FilterChain) bool {
	var tp tcpproxy.TcpProxy
	return len(fc.Filters) == 1 && fc.Filters[0].GetTypedConfig().UnmarshalTo(&tp) == nil &&
		tp.GetCluster() == translate.BlackHoleCluster
}

// TestPeerAuthnSplitsSharedOutputs: scopes of one view whose workloads
// serve the same ports share their Output only when their modes agree.
func TestPeerAuthnSplitsSharedOutputs(t *testing.T) {
	store := loadManifests(t, paMesh)
	snap := store.Apply([]model.Change{{Kind: model.KindPeerAuthentication, Namespace: "shop", Name: "v2",
		Object: strictFor("v2", map[string]string{"version": "v2"})}})
	x := translate.NewIndex(snap, translate.Options{})
	v1 := translate.Build(x, paScope(t, "sidecar|envoy|shop|app=reviews,version=v1|agent"))
	v2 := translate.Build(x, paScope(t, "sidecar|envoy|shop|app=reviews,version=v2|agent"))
	v3 := translate.Build(x, paScope(t, "sidecar|envoy|shop|app=reviews,version=v3|agent"))
	for _, out := range []*translate.Output{v1, v2, v3} {
		require.NoError(t, translate.ValidateIn(x, out))
	}
	assert.Same(t, v1, v3, "same view, ports and modes: one Output")
	assert.NotSame(t, v1, v2, "STRICT and PERMISSIVE workloads never share an Output")
	names, plain := inboundChains(t, v2, 8080)
	assert.False(t, plain, "STRICT: no plaintext chain for 8080")
	assert.NotContains(t, names, "0.0.0.0_8080_mtls")
	_, plain = inboundChains(t, v1, 8080)
	assert.True(t, plain, "PERMISSIVE keeps the plaintext chain")
}

// TestPeerAuthnChangeRebuilds: an Index built from the previous one
// follows a PeerAuthentication added, changed and deleted.
func TestPeerAuthnChangeRebuilds(t *testing.T) {
	store := loadManifests(t, paMesh)
	scope := paScope(t, "sidecar|envoy|shop|app=reviews,version=v1|agent")
	x0 := translate.NewIndexFrom(nil, store.Current(), translate.Options{})
	before := translate.Build(x0, scope)

	x1 := translate.NewIndexFrom(x0, store.Apply([]model.Change{{Kind: model.KindPeerAuthentication,
		Namespace: "shop", Name: "default", Object: strictFor("default", nil)}}), translate.Options{})
	strict := translate.Build(x1, scope)
	require.NoError(t, translate.ValidateIn(x1, strict))
	_, plain := inboundChains(t, strict, 8080)
	assert.False(t, plain, "namespace-wide STRICT took effect")

	x2 := translate.NewIndexFrom(x1, store.Apply([]model.Change{{Kind: model.KindPeerAuthentication,
		Namespace: "shop", Name: "default"}}), translate.Options{})
	after := translate.Build(x2, scope)
	_, plain = inboundChains(t, after, 8080)
	assert.True(t, plain, "deleted: PERMISSIVE again")
	require.Len(t, after.Listeners, len(before.Listeners))
	for i := range after.Listeners {
		assert.True(t, proto.Equal(before.Listeners[i], after.Listeners[i]), after.Listeners[i].Name)
	}
}

// TestExplainPeerAuthn: /debug/sidecarz says what each port accepts, and
// warns when a proxy without Istio's agent refuses STRICT ports.
func TestExplainPeerAuthn(t *testing.T) {
	store := loadManifests(t, paMesh)
	x := translate.NewIndex(store.Apply([]model.Change{{Kind: model.KindPeerAuthentication, Namespace: "shop",
		Name: "default", Object: strictFor("default", nil)}}), translate.Options{})

	e := translate.ExplainScope(x, paScope(t, "sidecar|envoy|shop|app=reviews,version=v1")).PeerAuthentication
	require.NotNil(t, e)
	assert.Equal(t, "shop/default", e.Namespace)
	assert.Equal(t, "STRICT", e.Mode)
	assert.False(t, e.Agent)
	require.Len(t, e.Ports, 2)
	assert.Equal(t, translate.PortMTLSExplanation{Port: 8080, Mode: "STRICT",
		Inbound: "refused (STRICT without Istio's agent: no certificate)"}, e.Ports[0])
	assert.Contains(t, e.Warning, "connections to 8080, 9191, every other port are refused")

	e = translate.ExplainScope(x, paScope(t, "sidecar|envoy|shop|app=reviews,version=v1|agent")).PeerAuthentication
	require.NotNil(t, e)
	assert.Equal(t, "mTLS only", e.Ports[1].Inbound)
	assert.Equal(t, "mTLS only", e.OtherPorts)
	assert.Empty(t, e.Warning)

	assert.Nil(t, translate.ExplainScope(x, paScope(t, "router|envoy|shop|istio=gw")).PeerAuthentication)
}

// loadManifests reads manifests into a new Store through the file provider.
func loadManifests(t *testing.T, manifests string) *model.Store {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "in.yaml"), []byte(manifests), 0o644))
	store := model.NewStore()
	require.NoError(t, (&file.Provider{Dir: dir, Store: store}).Load())
	return store
}
