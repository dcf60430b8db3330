package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/xds"
)

// meshctl what-if against the real meshd serving hack/demo: what it
// predicts for a canary weight change is exactly what applying the change
// pushes, and the bank's ALS outage is caught before it happens.

const (
	whatIfShopA = "sidecar~127.0.0.1~client-a.shop~shop.svc.cluster.local"
	whatIfShopB = "sidecar~127.0.0.1~client-b.shop~shop.svc.cluster.local"
	whatIfBank  = "sidecar~127.0.0.1~teller.bank~bank.svc.cluster.local"
	whatIfEnvoy = "sidecar~10.1.1.10~frontend-v1-0.shop~shop.svc.cluster.local"

	// whatIfBankSidecar keeps bank's proxies to bank's services, so a
	// change of shop's routing does not concern them.
	whatIfBankSidecar = `apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: default, namespace: bank}
spec:
  egress:
  - hosts: ["./*"]
`
	whatIfALS = `apiVersion: v1
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
	whatIfCollector = `apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {name: als-collector, namespace: monitoring}
spec:
  hosts: [als-collector.monitoring.svc.cluster.local]
  ports: [{number: 9000, name: grpc-als, protocol: GRPC}]
  resolution: DNS
  location: MESH_INTERNAL
`
)

// whatIfDemo copies hack/demo (and whatIfBankSidecar) into a directory.
func whatIfDemo(t *testing.T) string {
	dir := t.TempDir()
	files, err := filepath.Glob("../hack/demo/*.yaml")
	require.NoError(t, err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		writeFile(t, dir, filepath.Base(f), string(b))
	}
	writeFile(t, dir, "bank-sidecar.yaml", whatIfBankSidecar)
	return dir
}

// whatIf runs meshctl what-if on change (written to a file) and returns
// its report (-o json), its short output and its exit status.
func whatIf(t *testing.T, bin string, m *meshd, change string, args ...string) (*xds.WhatIfReport, string, int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "change.yaml")
	require.NoError(t, os.WriteFile(path, []byte(change), 0o644))
	base := append([]string{"what-if", "-f", path, "--meshd-addr", m.adminURL}, args...)
	short, stderr, code := runMeshctl(t, bin, base...)
	require.Empty(t, stderr)
	out, stderr, jsonCode := runMeshctl(t, bin, append(base, "-o", "json")...)
	require.Empty(t, stderr)
	require.Equal(t, code, jsonCode)
	var rep xds.WhatIfReport
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	return &rep, short, code
}

// syncedVersions returns the version of each type meshd last sent each
// proxy, from /debug/syncz.
func syncedVersions(t *testing.T, m *meshd) map[string]map[string]string {
	var entries []harness.SyncEntry
	m.getJSON(t, "/debug/syncz", &entries)
	out := map[string]map[string]string{}
	for _, e := range entries {
		out[e.Proxy] = map[string]string{}
		for typ, ts := range e.Types {
			out[e.Proxy][typ] = ts.SentVersion
		}
	}
	return out
}

func TestWhatIfCanaryPredictsThePush(t *testing.T) {
	bin := buildMeshctl(t)
	dir := whatIfDemo(t)
	m := startMeshd(t, dir)
	for node, c := range map[string]struct{ ns, target string }{
		whatIfShopA: {"shop", "xds:///reviews.shop.svc.cluster.local:9080"},
		whatIfShopB: {"shop", "xds:///reviews.shop.svc.cluster.local:9080"},
		whatIfBank:  {"bank", "xds:///ledger.bank.svc.cluster.local:50051"},
	} {
		harness.DialXDS(t, m.xdsAddr, node, c.ns, c.target).Connect()
	}
	for _, node := range []string{whatIfShopA, whatIfShopB, whatIfBank} {
		require.Eventually(t, func() bool { return m.acked(t, node, "rds") != "" }, 15*time.Second, 20*time.Millisecond,
			"%s never ACKed its routes", node)
	}
	routing, err := os.ReadFile(filepath.Join(dir, "shop-reviews-routing.yaml"))
	require.NoError(t, err)
	canary := strings.NewReplacer("weight: 80", "weight: 50", "weight: 20", "weight: 50").Replace(string(routing))

	rep, short, code := whatIf(t, bin, m, canary)
	t.Logf("meshctl what-if:\n%s", short)
	require.Equal(t, 1, code, "exit 1: a change")
	assert.False(t, rep.Rejected)
	assert.Equal(t, 2, rep.ScopesSelected, "two scopes: shop's clients share one")
	require.Len(t, rep.Scopes, 1, "only shop's scope sees reviews")
	sc := rep.Scopes[0]
	assert.Equal(t, "sidecar|grpc|shop|", sc.Scope)
	assert.Equal(t, []string{whatIfShopA, whatIfShopB}, sc.Proxies)
	require.Len(t, sc.Types, 1)
	assert.Equal(t, "routes", sc.Types[0].Type)
	assert.Equal(t, []string{"outbound|9080||reviews.shop.svc.cluster.local", "outbound|9090||reviews.shop.svc.cluster.local"},
		sc.Types[0].Changed)
	assert.Equal(t, 2, rep.ProxiesPushed)
	assert.Equal(t, 2*sc.Types[0].BytesPerProxy, rep.BytesPushed)
	assert.Contains(t, short, "+          weight: 50")

	// Apply it: exactly the predicted proxies get new routes, and nothing else.
	before := syncedVersions(t, m)
	var push xds.PushStatus
	m.getJSON(t, "/debug/push_status", &push)
	writeFile(t, dir, "shop-reviews-routing.yaml", canary)
	for _, node := range sc.Proxies {
		m.waitNewAck(t, node, "rds", before[node]["rds"])
	}
	var after xds.PushStatus
	m.getJSON(t, "/debug/push_status", &after)
	require.Greater(t, after.Seq, push.Seq)
	assert.Equal(t, rep.ScopesChanged, after.ScopesChanged, "the push changed the scopes what-if named")
	now := syncedVersions(t, m)
	for _, node := range []string{whatIfShopA, whatIfShopB, whatIfBank} {
		for _, typ := range []string{"lds", "rds", "cds"} {
			changed := typ == "rds" && node != whatIfBank
			assert.Equal(t, changed, now[node][typ] != before[node][typ], "%s %s", node, typ)
		}
	}

	rep, short, code = whatIf(t, bin, m, canary)
	assert.Equal(t, 0, code, "applied: no change left\n%s", short)
	assert.False(t, rep.Changed)
	assert.Contains(t, short, "NO CHANGE")
}

func TestWhatIfAccessLogServiceOutage(t *testing.T) {
	bin := buildMeshctl(t)
	m := startMeshd(t, whatIfDemo(t))
	// An Envoy sidecar of shop's frontend (access logs are Envoy's).
	holdProxy(t, harness.DialXDSPlain(t, m.xdsAddr), harness.SecureNode(t, whatIfEnvoy, "shop",
		map[string]any{"LABELS": map[string]any{"app": "frontend", "version": "v1"}}))

	rep, short, code := whatIf(t, bin, m, whatIfALS)
	t.Logf("meshctl what-if (collector missing):\n%s", short)
	require.Equal(t, 2, code, "exit 2: rejected")
	assert.True(t, rep.Rejected)
	assert.False(t, rep.Changed, "no listener would reference the missing collector")
	require.Len(t, rep.Errors, 1)
	assert.Equal(t, "MeshConfig", string(rep.Errors[0].Kind))
	assert.Contains(t, rep.Errors[0].Message, `service "als-collector.monitoring.svc.cluster.local" is not in the registry`)
	assert.Contains(t, short, "als-collector.monitoring.svc.cluster.local")

	rep, short, code = whatIf(t, bin, m, whatIfALS+"---\n"+whatIfCollector, "--proxy", "frontend-v1-0.shop")
	t.Logf("meshctl what-if (with the collector):\n%s", short)
	require.Equal(t, 1, code, "exit 1: a change")
	assert.False(t, rep.Rejected)
	require.Len(t, rep.Scopes, 1)
	types := map[string]xds.WhatIfType{}
	for _, ty := range rep.Scopes[0].Types {
		types[ty.Type] = ty
	}
	assert.Contains(t, types["clusters"].Added, "outbound|9000||als-collector.monitoring.svc.cluster.local")
	assert.Contains(t, types["listeners"].Changed, "0.0.0.0_8080")
	assert.Contains(t, types["listeners"].Diff, "clusterName: outbound|9000||als-collector.monitoring.svc.cluster.local")
}
