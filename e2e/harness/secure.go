package harness

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
	pb "istio.io/api/security/v1alpha1"
)

// The secure port (istiod's 15012) from a client's side: TLS verified
// against the mesh root, a service-account token on every call.

// IstiodName is the name the secure port's serving certificate is verified
// for, as pilot-agent does.
const IstiodName = "istiod.istio-system.svc"

// bearer sends a token as "authorization: Bearer <token>" on every call.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	if b == "" {
		return nil, nil
	}
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// DialSecure connects to meshd's secure port at addr over TLS, verifying its
// certificate for serverName against rootPEM, with token on every call (none
// when empty).
func DialSecure(t testing.TB, addr, serverName string, rootPEM []byte, token string) *grpc.ClientConn {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(rootPEM), "root certificate PEM")
	creds := credentials.NewTLS(&tls.Config{RootCAs: pool, ServerName: serverName, MinVersion: tls.VersionTLS12})
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds), grpc.WithPerRPCCredentials(bearer(token)))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// SecureNode is the node of a sidecar (or, with GENERATOR grpc, proxyless
// client) claiming namespace ns.
func SecureNode(t testing.TB, nodeID, ns string, meta map[string]any) *core.Node {
	t.Helper()
	m := map[string]any{"NAMESPACE": ns}
	for k, v := range meta {
		m[k] = v
	}
	st, err := structpb.NewStruct(m)
	require.NoError(t, err)
	return &core.Node{Id: nodeID, Metadata: st}
}

// FetchFirst opens a state-of-the-world ADS stream on conn, asks for every
// resource of typeURL as node, and returns the first response, or the
// stream's error (e.g. PermissionDenied) when it ends without one. It waits
// at most timeout.
func FetchFirst(conn *grpc.ClientConn, node *core.Node, typeURL string, timeout time.Duration) (*discovery.DiscoveryResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.Send(&discovery.DiscoveryRequest{Node: node, TypeUrl: typeURL}); err != nil {
		return nil, err
	}
	return s.Recv()
}

// RequestCert asks Istio's CA service on conn for a certificate for
// spiffeID with a fresh P-256 key, as pilot-agent does, and returns the
// response's chain (leaf first, root last) parsed.
func RequestCert(conn *grpc.ClientConn, spiffeID string, ttl time.Duration) ([]*x509.Certificate, error) {
	csr, err := NewCSR(spiffeID)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := pb.NewIstioCertificateServiceClient(conn).CreateCertificate(ctx,
		&pb.IstioCertificateRequest{Csr: string(csr), ValidityDuration: int64(ttl.Seconds())})
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, p := range resp.GetCertChain() {
		block, _ := pem.Decode([]byte(p))
		if block == nil {
			return nil, errors.New("certificate chain entry without PEM block: " + p)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// NewCSR returns a PEM CSR for spiffeID (its only URI SAN) with a new P-256
// key.
func NewCSR(spiffeID string) ([]byte, error) {
	u, err := url.Parse(spiffeID)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), nil
}

// VerifyChain checks that chain[0] chains to rootPEM through chain[1:] and
// returns its URI SANs.
func VerifyChain(t testing.TB, chain []*x509.Certificate, rootPEM []byte) []string {
	t.Helper()
	require.NotEmpty(t, chain)
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(rootPEM))
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	require.NoError(t, err, "certificate chain must verify against the mesh root")
	var uris []string
	for _, u := range chain[0].URIs {
		uris = append(uris, u.String())
	}
	return uris
}

// ServingChain connects to addr with TLS for serverName without verifying
// and returns the certificates the server presented.
func ServingChain(t testing.TB, addr, serverName string) []*x509.Certificate {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: serverName, InsecureSkipVerify: true, NextProtos: []string{"h2"}}) //nolint:gosec // inspected, then verified by the caller
	require.NoError(t, err)
	defer c.Close()
	return c.ConnectionState().PeerCertificates
}

// WriteStaticTokens writes a --static-tokens file: each entry is
// "TOKEN NAMESPACE SERVICEACCOUNT".
func WriteStaticTokens(t testing.TB, entries ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(path, []byte(strings.Join(entries, "\n")+"\n"), 0o600))
	return path
}

// DialXDSPlain connects to meshd's plaintext ADS port.
func DialXDSPlain(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}
