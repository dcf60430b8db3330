package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/internal/xdsclient"
)

// meshctl against the real meshd on the demo mesh (file provider): an
// Envoy-like client and grpc-go's xDS client that ACK everything are
// SYNCED; a client that NACKs its listeners is NACKED, with its message;
// proxy-config prints the demo's clusters, listeners, routes and endpoints;
// errors name the address or the proxies close to the one asked for.

// The proxies of the test, by node ID.
const (
	ctlSidecar = "sidecar~10.1.0.5~frontend-v1-0.shop~shop.svc.cluster.local"
	ctlGRPC    = "sidecar~10.1.0.6~grpc-client.bank~bank.svc.cluster.local"
	ctlNacker  = "sidecar~10.1.0.7~teller-0.bank~bank.svc.cluster.local"
	nackReason = "Error adding/updating listener(s) 0.0.0.0_443: simulated rejection"
)

// TestMeshctlFileProvider runs the built meshctl against the real meshd.
func TestMeshctlFileProvider(t *testing.T) {
	ctl := buildMeshctl(t)
	m := harness.StartMeshd(t, meshdBin, 20*time.Second, []string{"--config-dir", "../hack/demo"})
	addr := strings.TrimPrefix(m.AdminURL, "http://")
	run := func(args ...string) (string, string, int) {
		return runMeshctl(t, ctl, append(args, "--meshd-addr", addr)...)
	}

	c, err := xdsclient.Start(harness.DialXDSPlain(t, m.XDSAddr), ctlSidecar,
		map[string]any{"NAMESPACE": "shop", "LABELS": map[string]any{"app": "frontend", "version": "v1"}})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	grpcConn := harness.DialXDS(t, m.XDSAddr, ctlGRPC, "bank", "xds:///ledger.bank.svc.cluster.local:50051")
	grpcConn.Connect()
	for _, p := range []string{ctlSidecar, ctlGRPC} {
		for _, typ := range xdsclient.Types {
			require.Eventually(t, func() bool { return m.Acked(t, p, typ) != "" }, 15*time.Second, 20*time.Millisecond,
				"%s never ACKed %s", p, typ)
		}
	}
	nackListeners(t, m, ctlNacker, "bank", nackReason)

	t.Run("proxy-status: SYNCED for ACKing clients, NACKED after a rejected response", func(t *testing.T) {
		out, stderr, code := run("proxy-status")
		require.Equal(t, 0, code, stderr)
		rows := tableRows(out)
		assert.Equal(t, []string{"CLUSTER", "CDS", "LDS", "EDS", "RDS", "ECDS", "ISTIOD", "VERSION"}, rows["NAME"])
		synced := []string{"-", "SYNCED", "SYNCED", "SYNCED", "SYNCED", "NOT SENT", addr, "-"}
		assert.Equal(t, synced, rows["frontend-v1-0.shop"], out)
		assert.Equal(t, synced, rows["grpc-client.bank"], out)
		assert.Equal(t, []string{"-", "SYNCED", "NACKED", "NOT SENT", "NOT SENT", "NOT SENT", addr, "-"}, rows["teller-0.bank"], out)
	})

	t.Run("proxy-status PROXY: versions per type and the NACK", func(t *testing.T) {
		out, stderr, code := run("proxy-status", "teller-0.bank")
		require.Equal(t, 0, code, stderr)
		assert.Contains(t, out, "Node ID:   "+ctlNacker)
		assert.Regexp(t, `(?m)^CDS:  in sync: the proxy ACKed version \S+, the one meshd would send now$`, out)
		assert.Regexp(t, `(?m)^LDS:  differs: meshd would send version \S+ \(rejected\), the proxy has nothing ACKed`, out)
		assert.Contains(t, out, "last NACK (1 in all): "+nackReason)
		out, _, code = run("proxy-status", ctlSidecar)
		require.Equal(t, 0, code)
		assert.Regexp(t, `(?m)^RDS\s+SYNCED\s+(\S+)\s+(\S+)\s+4\s+0$`, out)
	})

	t.Run("proxy-config from meshd", func(t *testing.T) {
		want := map[string][]string{
			"clusters":  {"reviews.shop.svc.cluster.local 9080 v1 outbound EDS reviews.shop", "ledger.bank.svc.cluster.local 50051 - outbound EDS"},
			"listeners": {"0.0.0.0 9080 ALL Route: 9080", "0.0.0.0 443 SNI: core.bank.example Cluster: outbound|443||core.bank.example"},
			"routes":    {"9080 reviews.shop.svc.cluster.local:9080 reviews.shop.svc.cluster.local., reviews + 2 more... /* reviews.shop"},
			"endpoints": {"10.1.2.2:9080 HEALTHY - outbound|9080|v2|reviews.shop.svc.cluster.local"},
			"secret":    {"No secret items to show."},
		}
		for kind, lines := range want {
			out, stderr, code := run("proxy-config", kind, "frontend-v1-0.shop")
			require.Equal(t, 0, code, "%s: %s", kind, stderr)
			for _, l := range lines {
				assert.Contains(t, squeeze(out), l, "%s:\n%s", kind, out)
			}
		}
		out, _, code := run("pc", "clusters", ctlSidecar, "--fqdn", "reviews", "--subset", "v2", "-o", "json")
		require.Equal(t, 0, code)
		var clusters []struct{ Name string }
		require.NoError(t, json.Unmarshal([]byte(out), &clusters), out)
		assert.Len(t, clusters, 2, out)
	})

	t.Run("errors", func(t *testing.T) {
		_, stderr, code := run("proxy-config", "clusters", "frontend-v1-0")
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, `proxy "frontend-v1-0" is not connected`)
		assert.Contains(t, stderr, "did you mean frontend-v1-0.shop?")
		_, stderr, code = runMeshctl(t, ctl, "proxy-status", "--meshd-addr", "127.0.0.1:1")
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "cannot reach meshd's admin at 127.0.0.1:1")
		assert.Contains(t, stderr, "kubectl -n istio-system port-forward deploy/meshd 15014:15014")
		_, stderr, code = run("proxy-config", "clusters")
		assert.Equal(t, 2, code, stderr)
	})
}

// nackListeners connects a state-of-the-world ADS client as nodeID in ns
// that ACKs its clusters and NACKs the first listener response with
// reason, as Envoy does (response_nonce of the response, error_detail
// set, version_info the last accepted: none), and waits until meshd has
// counted the NACK. The stream stays open until the test ends.
func nackListeners(t *testing.T, m *harness.Meshd, nodeID, ns, reason string) {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := discovery.NewAggregatedDiscoveryServiceClient(harness.DialXDSPlain(t, m.XDSAddr)).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	node := harness.SecureNode(t, nodeID, ns, nil)
	recv := func(typeURL string) *discovery.DiscoveryResponse {
		for {
			resp, err := s.Recv()
			require.NoError(t, err)
			if resp.GetTypeUrl() == typeURL {
				return resp
			}
		}
	}
	send := func(r *discovery.DiscoveryRequest) { require.NoError(t, s.Send(r)) }
	send(&discovery.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType})
	cds := recv(resourcev3.ClusterType)
	send(&discovery.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType, VersionInfo: cds.GetVersionInfo(), ResponseNonce: cds.GetNonce()})
	send(&discovery.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType})
	lds := recv(resourcev3.ListenerType)
	send(&discovery.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ListenerType, ResponseNonce: lds.GetNonce(),
		ErrorDetail: &rpcstatus.Status{Code: 3, Message: reason}})
	require.Eventually(t, func() bool {
		var entries []struct {
			Proxy string
			Types map[string]struct{ Nacks int }
		}
		m.GetJSON(t, "/debug/syncz", &entries)
		for _, e := range entries {
			if e.Proxy == nodeID && e.Types["lds"].Nacks > 0 {
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "meshd never saw the NACK of %s", nodeID)
}

// buildMeshctl, runMeshctl and tableRows are the harness's.
func buildMeshctl(t *testing.T) string { return harness.BuildMeshctl(t) }

func runMeshctl(t *testing.T, bin string, args ...string) (stdout, stderr string, code int) {
	return harness.RunMeshctl(t, bin, args...)
}

func tableRows(out string) map[string][]string { return harness.TableRows(out) }

// squeeze collapses each line's runs of spaces, so table lines compare by
// content.
func squeeze(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return strings.Join(lines, "\n")
}
