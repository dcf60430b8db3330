package ca

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/testcerts"
)

var fooID = Identity{TrustDomain: "cluster.local", Namespace: "foo", ServiceAccount: "bar"}

func TestSPIFFEID(t *testing.T) {
	require.Equal(t, "spiffe://cluster.local/ns/foo/sa/bar", fooID.SPIFFEID())
}

func TestSignIssuesWorkloadCertificate(t *testing.T) {
	plugged := newPlugged(t)
	tests := []struct {
		name string
		ca   *CA
		// wantChain is the number of elements: leaf, chain certs, root.
		wantChain int
	}{
		{name: "self-signed", ca: newSelfSignedCA(t, &MemoryStore{}), wantChain: 2},
		{name: "plug-in with intermediate", ca: newPluggedCA(t, plugged), wantChain: 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := time.Now()
			chainPEM, err := tt.ca.Sign(newCSR(t, []string{fooID.SPIFFEID()}, nil), fooID, time.Hour)
			require.NoError(t, err)
			require.Len(t, chainPEM, tt.wantChain)
			require.Equal(t, string(tt.ca.Root()), chainPEM[len(chainPEM)-1], "root is the last element")

			chain := parseChain(t, chainPEM)
			leaf := chain[0]
			require.Len(t, leaf.URIs, 1)
			require.Equal(t, "spiffe://cluster.local/ns/foo/sa/bar", leaf.URIs[0].String())
			require.Empty(t, leaf.DNSNames)
			require.Empty(t, leaf.IPAddresses)
			require.Empty(t, leaf.EmailAddresses)
			require.False(t, leaf.IsCA)
			require.True(t, leaf.BasicConstraintsValid)
			require.Equal(t, x509.KeyUsageDigitalSignature|x509.KeyUsageKeyEncipherment, leaf.KeyUsage)
			require.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}, leaf.ExtKeyUsage)
			require.WithinDuration(t, before.Add(-ClockSkewGracePeriod), leaf.NotBefore, 5*time.Second)
			require.WithinDuration(t, before.Add(time.Hour), leaf.NotAfter, 5*time.Second)

			verifyAgainstRoot(t, tt.ca.Root(), leaf, chain[1:len(chain)-1], x509.ExtKeyUsageClientAuth)
			verifyAgainstRoot(t, tt.ca.Root(), leaf, chain[1:len(chain)-1], x509.ExtKeyUsageServerAuth)
		})
	}
}

func TestSignChainOrderMatchesIstiod(t *testing.T) {
	m := newPlugged(t)
	c := newPluggedCA(t, m)
	chainPEM, err := c.Sign(newCSR(t, []string{fooID.SPIFFEID()}, nil), fooID, 0)
	require.NoError(t, err)
	chain := parseChain(t, chainPEM)
	// istiod: leaf, cert-chain.pem flattened (here intermediate, root), then
	// root-cert.pem as the last element.
	require.Equal(t, m.inter.Certificate().Subject.String(), chain[0].Issuer.String())
	require.Equal(t, m.inter.Certificate().Raw, chain[1].Raw)
	require.Equal(t, m.root.Certificate().Raw, chain[2].Raw)
	require.Equal(t, m.root.Certificate().Raw, chain[3].Raw)
}

func TestSignTTL(t *testing.T) {
	c := newSelfSignedCA(t, &MemoryStore{})
	tests := []struct {
		name    string
		ttl     time.Duration
		want    time.Duration
		wantErr error
	}{
		{name: "zero takes the default 24h", ttl: 0, want: DefaultWorkloadCertTTL},
		{name: "negative takes the default 24h", ttl: -time.Second, want: DefaultWorkloadCertTTL},
		{name: "requested is honoured", ttl: 12 * time.Hour, want: 12 * time.Hour},
		{name: "exactly the max is allowed", ttl: DefaultMaxWorkloadCertTTL, want: DefaultMaxWorkloadCertTTL},
		{name: "above the max is refused", ttl: DefaultMaxWorkloadCertTTL + time.Second, wantErr: ErrTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			chainPEM, err := c.Sign(newCSR(t, []string{fooID.SPIFFEID()}, nil), fooID, tt.ttl)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				require.ErrorContains(t, err, "greater than the max allowed TTL 2160h0m0s")
				return
			}
			require.NoError(t, err)
			leaf := parseChain(t, chainPEM)[0]
			require.WithinDuration(t, now.Add(tt.want), leaf.NotAfter, 5*time.Second)
		})
	}
}

func TestSignCustomTTLOptions(t *testing.T) {
	c, err := New(t.Context(), &MemoryStore{}, Options{DefaultCertTTL: time.Hour, MaxCertTTL: 2 * time.Hour})
	require.NoError(t, err)
	chainPEM, err := c.Sign(newCSR(t, []string{fooID.SPIFFEID()}, nil), fooID, 0)
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(time.Hour), parseChain(t, chainPEM)[0].NotAfter, 5*time.Second)
	_, err = c.Sign(newCSR(t, []string{fooID.SPIFFEID()}, nil), fooID, 3*time.Hour)
	require.ErrorIs(t, err, ErrTTL)
}

func TestSignClampsToSigningCertExpiry(t *testing.T) {
	root := testcerts.NewCA("Root", testcerts.Options{})
	soon := time.Now().Add(3 * time.Hour).Truncate(time.Second)
	inter := testcerts.NewIntermediate("Short", root, testcerts.Options{KeyUsage: x509.KeyUsageCertSign, NotAfter: soon})
	c := newPluggedCA(t, pluggedMaterial{data: map[string][]byte{
		CACertKey: inter.CertPEM, CAKeyKey: inter.KeyPEM, RootCertKey: root.CertPEM, CertChainKey: inter.CertPEM,
	}})
	chainPEM, err := c.Sign(newCSR(t, []string{fooID.SPIFFEID()}, nil), fooID, 24*time.Hour)
	require.NoError(t, err)
	require.Equal(t, soon.UTC(), parseChain(t, chainPEM)[0].NotAfter.UTC())
}

func TestSignRefusesBadRequests(t *testing.T) {
	c := newSelfSignedCA(t, &MemoryStore{})
	good := newCSR(t, []string{fooID.SPIFFEID()}, nil)
	tests := []struct {
		name    string
		csr     []byte
		id      Identity
		wantErr string
		is      error
	}{
		{
			name:    "CSR for another namespace",
			csr:     newCSR(t, []string{"spiffe://cluster.local/ns/other/sa/bar"}, nil),
			id:      fooID,
			wantErr: "CSR asks for spiffe://cluster.local/ns/other/sa/bar, caller is spiffe://cluster.local/ns/foo/sa/bar",
			is:      ErrIdentityMismatch,
		},
		{
			name:    "CSR for another service account",
			csr:     newCSR(t, []string{"spiffe://cluster.local/ns/foo/sa/admin"}, nil),
			id:      fooID,
			wantErr: "caller is spiffe://cluster.local/ns/foo/sa/bar",
			is:      ErrIdentityMismatch,
		},
		{
			name:    "CSR for another trust domain",
			csr:     newCSR(t, []string{"spiffe://evil.local/ns/foo/sa/bar"}, nil),
			id:      fooID,
			wantErr: "CSR asks for spiffe://evil.local/ns/foo/sa/bar",
			is:      ErrIdentityMismatch,
		},
		{
			name:    "CSR with two identities",
			csr:     newCSR(t, []string{fooID.SPIFFEID(), "spiffe://cluster.local/ns/other/sa/bar"}, nil),
			id:      fooID,
			wantErr: "CSR has 2 URI SANs",
			is:      ErrIdentityMismatch,
		},
		{
			name:    "CSR with no identity",
			csr:     newCSR(t, nil, nil),
			id:      fooID,
			wantErr: "CSR has 0 URI SANs",
			is:      ErrIdentityMismatch,
		},
		{
			name:    "CSR with an extra DNS name",
			csr:     newCSR(t, []string{fooID.SPIFFEID()}, []string{"bank.example.com"}),
			id:      fooID,
			wantErr: "CSR carries DNS, IP or e-mail names",
			is:      ErrIdentityMismatch,
		},
		{
			name:    "CSR with a bad signature",
			csr:     corruptCSRSignature(t, good),
			id:      fooID,
			wantErr: "certificate request signature",
		},
		{
			name:    "not PEM",
			csr:     []byte("hello"),
			id:      fooID,
			wantErr: "no PEM certificate request found",
		},
		{
			name:    "a certificate instead of a CSR",
			csr:     c.Root(),
			id:      fooID,
			wantErr: `unexpected PEM block "CERTIFICATE"`,
		},
		{
			name:    "caller with empty service account",
			csr:     good,
			id:      Identity{TrustDomain: "cluster.local", Namespace: "foo"},
			wantErr: "identity has an empty service account",
		},
		{
			name:    "caller namespace with a slash",
			csr:     newCSR(t, []string{"spiffe://cluster.local/ns/foo/sa/bar/ns/x/sa/y"}, nil),
			id:      Identity{TrustDomain: "cluster.local", Namespace: "foo/sa/bar/ns/x", ServiceAccount: "y"},
			wantErr: "not allowed in a SPIFFE ID",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain, err := c.Sign(tt.csr, tt.id, 0)
			require.ErrorContains(t, err, tt.wantErr)
			if tt.is != nil {
				require.ErrorIs(t, err, tt.is)
			}
			require.Nil(t, chain)
		})
	}
}

// corruptCSRSignature flips the last byte of a CSR's DER, which lies in
// its signature, so it parses but does not verify.
func corruptCSRSignature(t *testing.T, csrPEM []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(csrPEM)
	require.NotNil(t, block)
	der := append([]byte(nil), block.Bytes...)
	der[len(der)-1] ^= 0xff
	_, err := x509.ParseCertificateRequest(der)
	require.NoError(t, err, "still parses")
	return pemEncode("CERTIFICATE REQUEST", der)
}
