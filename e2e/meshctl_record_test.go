//go:build meshctl_record

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/internal/testcerts"
	"github.com/meshd/meshd/internal/xdsclient"
)

// TestMeshctlRecordFixtures records the JSON fixtures of meshctl's golden
// tests (cmd/meshctl/testdata/fixtures) from the real meshd serving the
// demo mesh plus an ingress gateway terminating TLS, with real Envoys (a
// sidecar on the plaintext port, the gateway authenticated on the secure
// port, so that it is sent its secrets), a client that NACKs its listeners
// and one that never ACKs its clusters. It is a tool, built only with the
// meshctl_record tag (so `make test` neither runs nor skips it):
//
//	MESHD_BIN=$PWD/bin/meshd MESHD_ENVOY_BIN=$PWD/bin/envoy \
//	  go test -tags meshctl_record -count=1 -run TestMeshctlRecordFixtures ./e2e/
//
// then `go test ./cmd/meshctl/ -update` rewrites the goldens.
func TestMeshctlRecordFixtures(t *testing.T) {
	envoyBin, err := harness.EnvoyBinary()
	require.NoError(t, err)
	caDir, root := pluginCA(t)
	rootFile := filepath.Join(t.TempDir(), "root-cert.pem")
	require.NoError(t, os.WriteFile(rootFile, root, 0o600))
	tokenFile := filepath.Join(t.TempDir(), "istio-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("ingress-token"), 0o600))
	secureAddr := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	m := harness.StartMeshd(t, meshdBin, 20*time.Second, []string{"--config-dir", recordConfigDir(t),
		"--secure-xds-address", secureAddr, "--root-ca-dir", caDir,
		"--static-tokens", harness.WriteStaticTokens(t, "ingress-token shop ingress")})

	const sidecar = "sidecar~10.244.1.10~frontend-v1-0.shop~shop.svc.cluster.local"
	const gateway = "router~10.244.1.20~ingress-0.shop~shop.svc.cluster.local"
	envoys := map[string]*harness.Envoy{
		"frontend-v1-0.shop": startRecordEnvoy(t, envoyBin, "--xds-address", m.XDSAddr, "--namespace", "shop",
			"--pod-name", "frontend-v1-0", "--labels", "app=frontend,version=v1", "--ip", "10.244.1.10"),
		"ingress-0.shop": startRecordEnvoy(t, envoyBin, "--type", "router", "--tls", "--xds-address", secureAddr,
			"--root-cert", rootFile, "--token-file", tokenFile, "--service-account", "ingress",
			"--tls-server-name", harness.IstiodName, "--namespace", "shop", "--pod-name", "ingress-0",
			"--labels", "istio=ingress", "--ip", "10.244.1.20"),
	}
	for proxy, types := range map[string][]string{sidecar: xdsclient.Types, gateway: append(xdsclient.Types, "sds")} {
		for _, typ := range types {
			require.Eventually(t, func() bool { return m.Acked(t, proxy, typ) != "" }, 30*time.Second, 50*time.Millisecond,
				"%s never ACKed %s", proxy, typ)
		}
	}
	nackListeners(t, m, "sidecar~10.1.3.9~teller-0.bank~bank.svc.cluster.local", "bank", nackReason)
	neverAck(t, m, "sidecar~10.1.3.1~ledger-0.bank~bank.svc.cluster.local", "bank")
	time.Sleep(2 * time.Second) // let the Envoys settle: warming clusters, listeners

	dir := filepath.Join("..", "cmd", "meshctl", "testdata", "fixtures")
	require.NoError(t, os.RemoveAll(dir))
	save := func(name string, b []byte) {
		var buf bytes.Buffer
		require.NoError(t, json.Indent(&buf, bytes.TrimSpace(b), "", "  "), name)
		buf.WriteByte('\n')
		path := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, buf.Bytes(), 0o644))
	}
	get := func(url string) []byte {
		resp, err := http.Get(url)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", url, b)
		return b
	}
	save("syncz.json", get(m.AdminURL+"/debug/syncz"))
	save("adsz.json", get(m.AdminURL+"/debug/adsz"))
	for id, e := range envoys {
		save("meshd/"+id+"/config_dump.json", get(m.AdminURL+"/debug/config_dump?proxyID="+id))
		save("meshd/"+id+"/sidecarz.json", get(m.AdminURL+"/debug/sidecarz?proxyID="+id))
		if strings.HasPrefix(id, "ingress") {
			save("meshd/"+id+"/gatewayz.json", get(m.AdminURL+"/debug/gatewayz?proxyID="+id))
		}
		save("envoy/"+id+"/config_dump.json", withoutExtensions(t, get(e.AdminURL+"/config_dump")))
		save("envoy/"+id+"/clusters.json", get(e.AdminURL+"/clusters?format=json"))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "now.txt"), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644))
}

// withoutExtensions drops the list of Envoy's compiled-in extensions
// (bootstrap.node.extensions, 80 KB that meshctl never reads) from an
// Envoy config dump.
func withoutExtensions(t *testing.T, dump []byte) []byte {
	var d struct {
		Configs []map[string]any `json:"configs"`
	}
	require.NoError(t, json.Unmarshal(dump, &d))
	for _, c := range d.Configs {
		if b, ok := c["bootstrap"].(map[string]any); ok {
			if node, ok := b["node"].(map[string]any); ok {
				delete(node, "extensions")
			}
		}
	}
	b, err := json.Marshal(d)
	require.NoError(t, err)
	return b
}

// recordConfigDir is the demo mesh plus an ingress gateway in shop with
// three TLS servers (SIMPLE, MUTUAL with the Secret's CA, and an expired
// certificate) and a plain HTTP one, all routed to the frontend.
func recordConfigDir(t *testing.T) string {
	dir := t.TempDir()
	demo, err := filepath.Glob("../hack/demo/*.yaml")
	require.NoError(t, err)
	for _, f := range demo {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644))
	}
	ca := testcerts.NewCA("shop ingress CA", testcerts.Options{})
	leaf := func(cn string, o testcerts.Options) *testcerts.Cert {
		o.DNSNames = []string{cn}
		return testcerts.NewLeaf(cn, ca, o)
	}
	expired := testcerts.Options{NotBefore: time.Now().AddDate(-1, 0, 0), NotAfter: time.Now().AddDate(0, 0, -1)}
	var docs []string
	for name, c := range map[string]struct {
		cert *testcerts.Cert
		ca   []byte
	}{
		"web-cert":     {leaf("web.shop.example", testcerts.Options{}), nil},
		"partner-cert": {leaf("partner.shop.example", testcerts.Options{}), ca.CertPEM},
		"old-cert":     {leaf("old.shop.example", expired), nil},
	} {
		doc := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: %s, namespace: shop}\ntype: kubernetes.io/tls\n"+
			"stringData:\n  tls.crt: |\n%s  tls.key: |\n%s", name, indent(c.cert.CertPEM), indent(c.cert.KeyPEM))
		if c.ca != nil {
			doc += "  ca.crt: |\n" + indent(c.ca)
		}
		docs = append(docs, doc)
	}
	docs = append(docs, `apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: edge, namespace: shop}
spec:
  selector: {istio: ingress}
  servers:
  - port: {number: 18080, name: http, protocol: HTTP}
    hosts: ["*"]
  - port: {number: 18443, name: https-web, protocol: HTTPS}
    hosts: [web.shop.example]
    tls: {mode: SIMPLE, credentialName: web-cert}
  - port: {number: 19443, name: https-partner, protocol: HTTPS}
    hosts: [partner.shop.example]
    tls: {mode: MUTUAL, credentialName: partner-cert}
  - port: {number: 17443, name: https-old, protocol: HTTPS}
    hosts: [old.shop.example]
    tls: {mode: SIMPLE, credentialName: old-cert}`, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: edge, namespace: shop}
spec:
  hosts: ["*"]
  gateways: [edge]
  http:
  - match: [{uri: {prefix: /reviews}}]
    route: [{destination: {host: reviews.shop.svc.cluster.local, port: {number: 9080}}}]
  - route: [{destination: {host: frontend.shop.svc.cluster.local, port: {number: 8080}}}]`)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "shop-ingress.yaml"), []byte(strings.Join(docs, "\n---\n")+"\n"), 0o644))
	return dir
}

// indent indents PEM by four spaces, for a YAML block scalar.
func indent(pem []byte) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(strings.TrimSpace(string(pem)), "\n") {
		b.WriteString("    " + strings.TrimSuffix(l, "\n") + "\n")
	}
	return b.String()
}

// startRecordEnvoy runs a real Envoy with the bootstrap `meshd bootstrap
// ARGS` prints (admin, stats and readiness on free ports).
func startRecordEnvoy(t *testing.T, envoyBin string, args ...string) *harness.Envoy {
	admin := harness.FreePort(t)
	args = append([]string{"bootstrap", "--admin-port", strconv.Itoa(admin), "--stats-port", strconv.Itoa(harness.FreePort(t)),
		"--readiness-port", strconv.Itoa(harness.FreePort(t))}, args...)
	bootstrap, err := exec.Command(meshdBin, args...).Output()
	require.NoError(t, err, "meshd %v", args)
	return harness.StartEnvoy(t, envoyBin, bootstrap, admin)
}

// neverAck connects a client that subscribes to clusters and never ACKs
// them (its CDS stays STALE), until the test ends.
func neverAck(t *testing.T, m *harness.Meshd, nodeID, ns string) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := discovery.NewAggregatedDiscoveryServiceClient(harness.DialXDSPlain(t, m.XDSAddr)).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&discovery.DiscoveryRequest{Node: harness.SecureNode(t, nodeID, ns, nil), TypeUrl: resourcev3.ClusterType}))
	_, err = s.Recv()
	require.NoError(t, err)
}
