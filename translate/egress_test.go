package translate_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// references returns what the listeners and routes of out say, as JSON
// without spaces (protojson's spacing varies).
func references(t *testing.T, out *translate.Output) string {
	var b strings.Builder
	add := func(m proto.Message) {
		j, err := protojson.Marshal(m)
		require.NoError(t, err)
		b.WriteString(strings.ReplaceAll(string(j), " ", ""))
	}
	for _, l := range out.Listeners {
		add(l)
	}
	for _, r := range out.Routes {
		add(r)
	}
	return b.String()
}

// Istio's egress gateway pattern (golden cases gateway-egress-sidecar and
// gateway-egress-router): under REGISTRY_ONLY the calling sidecar reaches
// the external host only through the egress gateway — no listener or
// route of the sidecar names the host's clusters, every one of them names
// the egress gateway's — and the egress gateway sends it on to the host.
func TestEgressGatewayIsTheOnlyWayOut(t *testing.T) {
	in := "testdata/gateway-egress-sidecar/in.yaml"
	x := translate.NewIndex(loadSnapshot(t, in), translate.Options{})
	require.Empty(t, x.Errors())
	sidecar := buildScope(t, x, "sidecar|envoy|shop|app=checkout")
	refs := references(t, sidecar)
	assert.NotContains(t, refs, "||api.partner.example", "the sidecar never sends to the external host itself")
	assert.NotContains(t, refs, `"cluster":"PassthroughCluster"`, "REGISTRY_ONLY: nothing passes through")
	assert.Contains(t, refs, "outbound|80|partner|istio-egressgateway.istio-system.svc.cluster.local")
	assert.Contains(t, refs, "outbound|443|partner|istio-egressgateway.istio-system.svc.cluster.local")

	router := buildScope(t, x, "router|envoy|istio-system|istio=egressgateway")
	refs = references(t, router)
	assert.Contains(t, refs, `"cluster":"outbound|80||api.partner.example"`)
	assert.Contains(t, refs, `"cluster":"outbound|443||api.partner.example"`)
	assert.NotContains(t, refs, "istio-egressgateway.istio-system.svc.cluster.local", "the mesh leg does not apply on the gateway")
}

// buildScope translates and validates one scope of x.
func buildScope(t *testing.T, x *translate.Index, scope string) *translate.Output {
	t.Helper()
	sc, err := model.ParseScopeKey(scope)
	require.NoError(t, err)
	out := translate.Build(x, sc)
	require.NoError(t, translate.Validate(out))
	return out
}
