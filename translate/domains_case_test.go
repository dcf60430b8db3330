package translate_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// caseMesh: two ServiceEntries whose hosts differ only in case, on one
// HTTP port. Envoy (and uniqueDomains) compare domains without case.
const caseMesh = `
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: upper, namespace: shop, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  hosts: [API.example.com]
  addresses: [240.0.0.1]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{name: http, number: 80, protocol: HTTP}]
  endpoints: [{address: api-1.example.com}]
---
apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: lower, namespace: shop, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  hosts: [api.example.com]
  addresses: [240.0.0.2]
  location: MESH_EXTERNAL
  resolution: DNS
  ports: [{name: http, number: 80, protocol: HTTP}]
  endpoints: [{address: api-2.example.com}]
`

// TestContestedDomainsIgnoreCase: a domain two services claim in different
// case is resolved per service, as istiod's dedupeDomains (lower-cased)
// does, instead of failing validation of the whole scope: the first
// service keeps its names, the other keeps only what is its own (its VIP).
func TestContestedDomainsIgnoreCase(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in.yaml")
	require.NoError(t, os.WriteFile(in, []byte(caseMesh), 0o644))
	snap := loadSnapshot(t, in)
	require.Empty(t, snap.Errors())
	x := translate.NewIndex(snap, translate.Options{})
	sc, err := model.ParseScopeKey("sidecar|envoy|shop")
	require.NoError(t, err)
	out := translate.Build(x, sc)
	require.NoError(t, translate.Validate(out), "no domain twice, in any case")
	require.NoError(t, translate.ValidateIn(x, out))

	require.Len(t, out.Routes, 1)
	domains := map[string][]string{}
	for _, vh := range out.Routes[0].GetVirtualHosts() {
		domains[vh.GetName()] = vh.GetDomains()
	}
	require.Equal(t, []string{"API.example.com", "API.example.com.", "240.0.0.1"}, domains["API.example.com:80"],
		"first by host name, it keeps its names")
	require.Equal(t, []string{"240.0.0.2"}, domains["api.example.com:80"], "the other keeps its VIP only")
}
