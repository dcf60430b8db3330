package kube

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/e2e/testenv"
)

// The secure port (istiod's 15012) against the real API server: tokens
// from TokenRequest checked by TokenReview, the mesh CA's root kept in
// istio-ca-secret and shared by two replicas, published in
// istio-ca-root-cert.

// startSecureMeshd runs meshd with its secure port on a free loopback port
// (its serving certificate also valid for "localhost", for grpc-go's xDS
// client) and returns the port's address.
func startSecureMeshd(t *testing.T, istioNS string) (*harness.Meshd, string) {
	addr := "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	return startMeshd(t, istioNS, "--secure-xds-address", addr, "--custom-host", "localhost"), addr
}

// serviceAccount creates a ServiceAccount and returns its UID.
func (c *cluster) serviceAccount(ns, name string) string {
	sa, err := c.kube.CoreV1().ServiceAccounts(ns).Create(c.ctx,
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	require.NoError(c.t, err)
	return string(sa.UID)
}

// token asks TokenRequest for a token of ns/sa for Istio's CA audience, as
// the kubelet does for istio-proxy's istio-token volume.
func (c *cluster) token(ns, sa string) string {
	exp := int64(600)
	tr, err := c.kube.CoreV1().ServiceAccounts(ns).CreateToken(c.ctx, sa, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{Audiences: []string{"istio-ca"}, ExpirationSeconds: &exp}}, metav1.CreateOptions{})
	require.NoError(c.t, err)
	return tr.Status.Token
}

// rootCert waits for the istio-ca-root-cert ConfigMap of ns and returns its
// root-cert.pem.
func (c *cluster) rootCert(ns string) []byte {
	var root string
	require.Eventually(c.t, func() bool {
		cm, err := c.kube.CoreV1().ConfigMaps(ns).Get(c.ctx, "istio-ca-root-cert", metav1.GetOptions{})
		if err != nil {
			return false
		}
		root = cm.Data["root-cert.pem"]
		return root != "" && cm.Labels["istio.io/config"] == "true"
	}, 20*time.Second, 50*time.Millisecond, "istio-ca-root-cert in %s", ns)
	return []byte(root)
}

// writeFile writes b to a file readable by the proxy's user and returns
// its path.
func writeFile(t *testing.T, name string, b []byte) string {
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} { // the test's directory and this call's
		require.NoError(t, os.Chmod(d, 0o755))
	}
	path := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(path, b, 0o644))
	return path
}

func TestSecurePort(t *testing.T) {
	const nsA, nsB, sys = "secure-a", "secure-b", "secure-system"
	c := newCluster(t)
	for _, ns := range []string{sys, nsA, nsB} {
		c.namespace(ns, nil)
	}
	uidA := c.serviceAccount(nsA, "client")
	c.serviceAccount(nsB, "client")
	for _, ns := range []string{nsA, nsB} {
		c.service(ns, "echo", 7070)
	}
	b := harness.StartBackend(t, "echo-a", backendIP(60, 1), 7070)
	c.createSlice(slice(nsA, "echo-1", "echo", 7070, ep{b: b, ready: true}))

	m1, addr1 := startSecureMeshd(t, sys)
	_, addr2 := startSecureMeshd(t, sys)
	root := c.rootCert(nsA)
	assert.Equal(t, string(root), string(c.rootCert(nsB)), "one root in every namespace")
	tokenA := c.token(nsA, "client")
	nodeA := harness.SecureNode(t, nodeID("client", nsA), nsA, nil)
	spiffeA := "spiffe://cluster.local/ns/" + nsA + "/sa/client"

	t.Run("both replicas serve certificates that verify against istio-ca-root-cert", func(t *testing.T) {
		for _, addr := range []string{addr1, addr2} {
			chain := harness.ServingChain(t, addr, "istiod."+sys+".svc")
			harness.VerifyChain(t, chain, root)
			assert.Contains(t, chain[0].DNSNames, "istiod."+sys+".svc")
		}
	})

	t.Run("a TokenRequest token gets its namespace's config and certificate from either replica", func(t *testing.T) {
		for _, addr := range []string{addr1, addr2} {
			conn := harness.DialSecure(t, addr, "istiod."+sys+".svc", root, tokenA)
			resp, err := harness.FetchFirst(conn, nodeA, resourcev3.ClusterType, 20*time.Second)
			require.NoError(t, err)
			assert.NotEmpty(t, resp.GetResources())
			chain, err := harness.RequestCert(conn, spiffeA, time.Hour)
			require.NoError(t, err)
			assert.Equal(t, []string{spiffeA}, harness.VerifyChain(t, chain, root),
				"a certificate from %s verifies against the root both replicas publish", addr)
		}
	})

	t.Run("grpc-go's xDS client over TLS with its token file", func(t *testing.T) {
		_, port, _ := net.SplitHostPort(addr1)
		conn := harness.DialXDSSecure(t, "localhost:"+port, writeFile(t, "root-cert.pem", root),
			writeFile(t, "istio-token", []byte(tokenA)), nodeID("grpc", nsA), nsA, "xds:///echo."+nsA+".svc.cluster.local:7070")
		require.Eventually(t, func() bool {
			name, err := harness.Call(context.Background(), conn)
			return err == nil && name == "echo-a"
		}, 20*time.Second, 100*time.Millisecond, "an RPC through the secure xDS config")
	})

	t.Run("a node claiming another namespace is refused and sent nothing", func(t *testing.T) {
		before := m1.Counter(t, "meshd_xds_auth_failures_total", map[string]string{"reason": "namespace"})
		conn := harness.DialSecure(t, addr1, "istiod."+sys+".svc", root, tokenA)
		for _, typ := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
			resp, err := harness.FetchFirst(conn, harness.SecureNode(t, nodeID("client", nsB), nsB, nil), typ, 20*time.Second)
			assert.Nil(t, resp, "nothing of %s may reach a token of %s", nsB, nsA)
			assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
		}
		assert.Equal(t, before+2, m1.Counter(t, "meshd_xds_auth_failures_total", map[string]string{"reason": "namespace"}))
		_, err := harness.RequestCert(conn, "spiffe://cluster.local/ns/"+nsB+"/sa/client", time.Hour)
		assert.Equal(t, codes.InvalidArgument, status.Code(err), "no certificate for another identity: %v", err)
	})

	t.Run("expired and foreign tokens are refused", func(t *testing.T) {
		claims := testenv.SAClaims{Namespace: nsA, ServiceAccount: "client", UID: uidA, Audiences: []string{"istio-ca"}}
		claims.Expiry = time.Now().Add(-time.Minute)
		expired, err := env.SignServiceAccountToken(claims, nil)
		require.NoError(t, err)
		otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		claims.Expiry = time.Now().Add(time.Hour)
		foreign, err := env.SignServiceAccountToken(claims, otherKey)
		require.NoError(t, err)
		wrongAudience := func() string { // a valid token, for the API server's audience only
			exp := int64(600)
			tr, err := c.kube.CoreV1().ServiceAccounts(nsA).CreateToken(c.ctx, "client",
				&authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: &exp}}, metav1.CreateOptions{})
			require.NoError(t, err)
			return tr.Status.Token
		}()
		before := m1.Counter(t, "meshd_xds_auth_failures_total", map[string]string{"reason": "unauthenticated"})
		for name, token := range map[string]string{"expired": expired, "foreign": foreign, "other audience": wrongAudience} {
			conn := harness.DialSecure(t, addr1, "istiod."+sys+".svc", root, token)
			resp, err := harness.FetchFirst(conn, nodeA, resourcev3.ClusterType, 20*time.Second)
			assert.Nil(t, resp, name)
			assert.Equal(t, codes.Unauthenticated, status.Code(err), "%s token: %v", name, err)
			_, err = harness.RequestCert(conn, spiffeA, time.Hour)
			assert.Equal(t, codes.Unauthenticated, status.Code(err), "%s token, CA: %v", name, err)
		}
		assert.Equal(t, before+3, m1.Counter(t, "meshd_xds_auth_failures_total", map[string]string{"reason": "unauthenticated"}))
		// The control: the same claims signed by the API server's key, unexpired, are accepted.
		valid, err := env.SignServiceAccountToken(claims, nil)
		require.NoError(t, err)
		_, err = harness.RequestCert(harness.DialSecure(t, addr1, "istiod."+sys+".svc", root, valid), spiffeA, time.Hour)
		require.NoError(t, err)
	})

	t.Run("a deleted root ConfigMap is restored", func(t *testing.T) {
		require.NoError(t, c.kube.CoreV1().ConfigMaps(nsB).Delete(c.ctx, "istio-ca-root-cert", metav1.DeleteOptions{}))
		assert.Equal(t, string(root), string(c.rootCert(nsB)))
	})
}

// TestRootCertFollowsDiscoverySelectors: istio-ca-root-cert is published in
// the namespaces the discoverySelectors admit, as istiod's namespace
// controller, and reaches a namespace once its labels admit it.
func TestRootCertFollowsDiscoverySelectors(t *testing.T) {
	const in, out, later, sys = "rootcert-in", "rootcert-out", "rootcert-later", "rootcert-system"
	c := newCluster(t)
	c.namespace(sys, nil)
	c.namespace(in, map[string]string{"mesh": "on"})
	c.namespace(out, nil)
	mesh := writeMeshConfig(t, "discoverySelectors:\n- matchLabels: {mesh: \"on\"}\n")
	startMeshd(t, sys, "--secure-xds-address", "127.0.0.1:"+strconv.Itoa(harness.FreePort(t)), "--mesh-config", mesh)
	c.rootCert(in)
	c.namespace(later, map[string]string{"mesh": "on"})
	c.rootCert(later) // handled after every namespace that existed at start-up
	_, err := c.kube.CoreV1().ConfigMaps(out).Get(c.ctx, "istio-ca-root-cert", metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "a namespace the discoverySelectors leave out gets no root: %v", err)

	ns, err := c.kube.CoreV1().Namespaces().Get(c.ctx, out, metav1.GetOptions{})
	require.NoError(t, err)
	ns.Labels = map[string]string{"mesh": "on"}
	_, err = c.kube.CoreV1().Namespaces().Update(c.ctx, ns, metav1.UpdateOptions{})
	require.NoError(t, err)
	c.rootCert(out)
}
