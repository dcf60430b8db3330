package ca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/testcerts"
)

// pluggedMaterial is a root and an intermediate signing CA, laid out as the
// cacerts Secret (cert-chain.pem = intermediate then root, as Istio's docs).
type pluggedMaterial struct {
	root, inter *testcerts.Cert
	data        map[string][]byte
}

func newPlugged(t *testing.T) pluggedMaterial {
	t.Helper()
	root := testcerts.NewCA("Root CA", testcerts.Options{})
	inter := testcerts.NewIntermediate("Intermediate CA", root, testcerts.Options{})
	return pluggedMaterial{root: root, inter: inter, data: map[string][]byte{
		CACertKey:    inter.CertPEM,
		CAKeyKey:     inter.KeyPEM,
		RootCertKey:  root.CertPEM,
		CertChainKey: append(append([]byte{}, inter.CertPEM...), root.CertPEM...),
	}}
}

// newCSR makes a PEM CSR with the given URI and DNS SANs.
func newCSR(t *testing.T, uris []string, dns []string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return newCSRWithKey(t, key, uris, dns)
}

func newCSRWithKey(t *testing.T, key crypto.Signer, uris []string, dns []string) []byte {
	t.Helper()
	tmpl := &x509.CertificateRequest{DNSNames: dns}
	for _, s := range uris {
		u, err := url.Parse(s)
		require.NoError(t, err)
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	require.NoError(t, err)
	return pemEncode("CERTIFICATE REQUEST", der)
}

// newSelfSignedCA builds a CA from an empty store (creating istio-ca-secret).
func newSelfSignedCA(t *testing.T, store SecretStore) *CA {
	t.Helper()
	c, err := New(context.Background(), store, Options{})
	require.NoError(t, err)
	return c
}

// newPluggedCA builds a CA from plug-in material.
func newPluggedCA(t *testing.T, m pluggedMaterial) *CA {
	t.Helper()
	store := &MemoryStore{}
	require.NoError(t, store.Create(context.Background(), DefaultNamespace, PluggedSecretName, m.data))
	c, err := New(context.Background(), store, Options{})
	require.NoError(t, err)
	require.Equal(t, SourcePlugged, c.Source())
	return c
}

// parseChain parses a Sign result, one certificate per element.
func parseChain(t *testing.T, chain []string) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for i, s := range chain {
		certs, err := parseCertsPEM([]byte(s))
		require.NoError(t, err)
		require.Len(t, certs, 1, "chain element %d holds one certificate", i)
		out = append(out, certs[0])
	}
	return out
}

// verifyAgainstRoot verifies leaf with intermediates against rootPEM.
func verifyAgainstRoot(t *testing.T, rootPEM []byte, leaf *x509.Certificate, inter []*x509.Certificate, usage x509.ExtKeyUsage) {
	t.Helper()
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(rootPEM))
	pool := x509.NewCertPool()
	for _, c := range inter {
		pool.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: pool, KeyUsages: []x509.ExtKeyUsage{usage}})
	require.NoError(t, err)
}
