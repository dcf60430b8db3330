package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/internal/testcerts"
)

// The secure port with the file provider: a plug-in CA from --root-ca-dir,
// callers authenticated by --static-tokens. The Kubernetes suite runs the
// same checks with TokenReview and real service-account tokens.

// pluginCA writes a plug-in CA directory (an intermediate signed by a root,
// as istiod's cacerts) and returns it with the root's PEM.
func pluginCA(t *testing.T) (dir string, rootPEM []byte) {
	root := testcerts.NewCA("bank root CA", testcerts.Options{Organization: []string{"bank"}})
	inter := testcerts.NewIntermediate("meshd intermediate", root, testcerts.Options{})
	dir = t.TempDir()
	files := map[string][]byte{
		"ca-cert.pem":    inter.CertPEM,
		"ca-key.pem":     inter.KeyPEM,
		"root-cert.pem":  root.CertPEM,
		"cert-chain.pem": append(append([]byte{}, inter.CertPEM...), root.CertPEM...),
	}
	for name, b := range files {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
	}
	return dir, root.CertPEM
}

// startSecureMeshd serves the demo with the secure port on a free loopback
// port and returns its address.
func startSecureMeshd(t *testing.T, caDir, tokens string) (*meshd, string) {
	addr := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	m := harness.StartMeshd(t, meshdBin, 20*time.Second, []string{"--config-dir", "../hack/demo",
		"--secure-xds-address", addr, "--root-ca-dir", caDir, "--static-tokens", tokens})
	return &meshd{Meshd: m, xdsAddr: m.XDSAddr, adminURL: m.AdminURL}, addr
}

func TestSecurePortFileProvider(t *testing.T) {
	caDir, root := pluginCA(t)
	tokens := harness.WriteStaticTokens(t, "shop-token shop frontend", "bank-token bank teller")
	m, addr := startSecureMeshd(t, caDir, tokens)
	shopNode := harness.SecureNode(t, "sidecar~10.1.0.1~frontend-1.shop~shop.svc.cluster.local", "shop", nil)

	t.Run("serving certificate verifies against the root for istiod's names", func(t *testing.T) {
		chain := harness.ServingChain(t, addr, harness.IstiodName)
		harness.VerifyChain(t, chain, root)
		assert.Contains(t, chain[0].DNSNames, "istiod.istio-system.svc")
		assert.Contains(t, chain[0].DNSNames, "istio-pilot.istio-system.svc")
	})

	t.Run("a token's own namespace gets config and a certificate", func(t *testing.T) {
		conn := harness.DialSecure(t, addr, harness.IstiodName, root, "shop-token")
		resp, err := harness.FetchFirst(conn, shopNode, resourcev3.ClusterType, 10*time.Second)
		require.NoError(t, err)
		assert.NotEmpty(t, resp.GetResources())
		chain, err := harness.RequestCert(conn, "spiffe://cluster.local/ns/shop/sa/frontend", time.Hour)
		require.NoError(t, err)
		assert.Equal(t, []string{"spiffe://cluster.local/ns/shop/sa/frontend"}, harness.VerifyChain(t, chain, root))
		assert.WithinDuration(t, time.Now().Add(time.Hour), chain[0].NotAfter, 5*time.Minute)
	})

	t.Run("a node claiming another namespace is refused and sent nothing", func(t *testing.T) {
		before := m.Counter(t, "meshd_xds_auth_failures_total", map[string]string{"reason": "namespace"})
		conn := harness.DialSecure(t, addr, harness.IstiodName, root, "shop-token")
		bankNode := harness.SecureNode(t, "sidecar~10.1.0.2~teller-1.bank~bank.svc.cluster.local", "bank", nil)
		resp, err := harness.FetchFirst(conn, bankNode, resourcev3.ClusterType, 10*time.Second)
		assert.Nil(t, resp, "nothing may be sent to a node claiming another namespace")
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		assert.Equal(t, before+1, m.Counter(t, "meshd_xds_auth_failures_total", map[string]string{"reason": "namespace"}))
	})

	t.Run("a node claiming another service account is refused", func(t *testing.T) {
		conn := harness.DialSecure(t, addr, harness.IstiodName, root, "shop-token")
		node := harness.SecureNode(t, "sidecar~10.1.0.1~frontend-1.shop~shop.svc.cluster.local", "shop",
			map[string]any{"SERVICE_ACCOUNT": "payments"})
		_, err := harness.FetchFirst(conn, node, resourcev3.ClusterType, 10*time.Second)
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		assert.Equal(t, 1.0, m.Counter(t, "meshd_xds_auth_failures_total", map[string]string{"reason": "service_account"}))
	})

	t.Run("no certificate for another identity", func(t *testing.T) {
		conn := harness.DialSecure(t, addr, harness.IstiodName, root, "shop-token")
		_, err := harness.RequestCert(conn, "spiffe://cluster.local/ns/bank/sa/teller", time.Hour)
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
	})

	t.Run("unknown or missing tokens are refused", func(t *testing.T) {
		before := m.Counter(t, "meshd_xds_auth_failures_total", map[string]string{"reason": "unauthenticated"})
		for _, token := range []string{"forged-token", ""} {
			conn := harness.DialSecure(t, addr, harness.IstiodName, root, token)
			resp, err := harness.FetchFirst(conn, shopNode, resourcev3.ClusterType, 10*time.Second)
			assert.Nil(t, resp)
			assert.Equal(t, codes.Unauthenticated, status.Code(err), "token %q: %v", token, err)
			_, err = harness.RequestCert(conn, "spiffe://cluster.local/ns/shop/sa/frontend", time.Hour)
			assert.Equal(t, codes.Unauthenticated, status.Code(err), "token %q: %v", token, err)
		}
		assert.Equal(t, before+2, m.Counter(t, "meshd_xds_auth_failures_total", map[string]string{"reason": "unauthenticated"}))
	})

	t.Run("the plaintext port still serves", func(t *testing.T) {
		conn := harness.DialXDSPlain(t, m.xdsAddr)
		resp, err := harness.FetchFirst(conn, shopNode, resourcev3.ClusterType, 10*time.Second)
		require.NoError(t, err)
		assert.NotEmpty(t, resp.GetResources())
	})
}

// istioctlNode is the node istioctl x internal-debug puts in its request.
var istioctlNode = &core.Node{Id: "debug~0.0.0.0~istioctl~cluster.local"}

// fetchDebug asks on a new stream of conn for the debug endpoint name
// (type istio.io/debug, as istioctl x internal-debug), and returns the
// endpoint's output or the stream's error.
func fetchDebug(t *testing.T, conn *grpc.ClientConn, name string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&discovery.DiscoveryRequest{Node: istioctlNode, TypeUrl: "istio.io/debug", ResourceNames: []string{name}}))
	resp, err := s.Recv()
	if err != nil {
		return nil, err
	}
	require.Equal(t, "istio.io/debug", resp.GetTypeUrl())
	require.Len(t, resp.GetResources(), 1)
	require.Equal(t, "istio.io/debug", resp.GetResources()[0].GetTypeUrl())
	return resp.GetResources()[0].GetValue(), nil
}

// holdProxy connects node on conn until the test ends, once it has been
// sent its clusters.
func holdProxy(t *testing.T, conn *grpc.ClientConn, node *core.Node) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, s.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: resourcev3.ClusterType}))
	_, err = s.Recv()
	require.NoError(t, err)
}

// Debug endpoints over xDS on the secure port, with istiod's rules: the
// istio namespace reads everything; another namespace only config_dump of
// its own proxies; no identity, nothing.
func TestSecurePortDebugOverXDS(t *testing.T) {
	caDir, root := pluginCA(t)
	tokens := harness.WriteStaticTokens(t, "istio-token istio-system istioctl", "shop-token shop frontend", "bank-token bank teller")
	m, addr := startSecureMeshd(t, caDir, tokens)
	shopConn := harness.DialSecure(t, addr, harness.IstiodName, root, "shop-token")
	istioConn := harness.DialSecure(t, addr, harness.IstiodName, root, "istio-token")
	holdProxy(t, shopConn, harness.SecureNode(t, "sidecar~10.1.0.1~frontend-1.shop~shop.svc.cluster.local", "shop", nil))
	holdProxy(t, harness.DialSecure(t, addr, harness.IstiodName, root, "bank-token"),
		harness.SecureNode(t, "sidecar~10.1.0.2~teller-1.bank~bank.svc.cluster.local", "bank", nil))
	refused := func(reason string) float64 {
		return m.Counter(t, "meshd_xds_debug_refused_total", map[string]string{"reason": reason})
	}

	t.Run("the istio namespace reads syncz", func(t *testing.T) {
		out, err := fetchDebug(t, istioConn, "syncz")
		require.NoError(t, err)
		assert.Contains(t, string(out), "frontend-1.shop")
		assert.Contains(t, string(out), "teller-1.bank")
		assert.NotContains(t, string(out), "istioctl", "a debug stream is no proxy")
	})

	t.Run("a namespace reads the config_dump of its own proxy", func(t *testing.T) {
		out, err := fetchDebug(t, shopConn, "config_dump?proxyID=frontend-1.shop")
		require.NoError(t, err)
		assert.Contains(t, string(out), "envoy.admin.v3.ClustersConfigDump")
	})

	t.Run("a namespace is refused other endpoints and other namespaces' proxies", func(t *testing.T) {
		_, err := fetchDebug(t, shopConn, "syncz")
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		_, err = fetchDebug(t, shopConn, "config_dump?proxyID=teller-1.bank")
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		assert.Equal(t, 1.0, refused("endpoint"))
		assert.Equal(t, 1.0, refused("proxy"))
	})

	t.Run("the plaintext port refuses istio.io/debug", func(t *testing.T) {
		_, err := fetchDebug(t, harness.DialXDSPlain(t, m.xdsAddr), "syncz")
		assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
		assert.Equal(t, "authentication required", status.Convert(err).Message())
		assert.Equal(t, 1.0, refused("unauthenticated"))
	})
}
