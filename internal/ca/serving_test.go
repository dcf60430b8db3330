package ca

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestIstiodDNSNames(t *testing.T) {
	require.Equal(t, []string{
		"istio-pilot.istio-system.svc",
		"istiod-remote.istio-system.svc",
		"istiod.istio-system.svc",
	}, IstiodDNSNames("istio-system", "istiod.istio-system.svc"))
	require.Equal(t, []string{
		"istio-pilot.mesh.svc",
		"istiod-remote.mesh.svc",
		"istiod.mesh.svc",
		"istiod.mesh.svc.cluster.local",
	}, IstiodDNSNames("mesh", "", "istiod.mesh.svc.cluster.local"))
}

func TestServingCert(t *testing.T) {
	names := IstiodDNSNames("istio-system", "istiod.istio-system.svc", "istiod.istio-system.svc.cluster.local")
	tests := []struct {
		name      string
		ca        *CA
		wantChain int
		rsaKey    bool
	}{
		{name: "self-signed RSA root", ca: newSelfSignedCA(t, &MemoryStore{}), wantChain: 1, rsaKey: true},
		{name: "plug-in ECDSA intermediate", ca: newPluggedCA(t, newPlugged(t)), wantChain: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ttl := DefaultSelfSignedCACertTTL / 20 // above the workload max: not bounded by it
			certPEM, keyPEM, err := tt.ca.ServingCert(names, ttl)
			require.NoError(t, err)
			chain, err := parseCertsPEM(certPEM)
			require.NoError(t, err)
			require.Len(t, chain, tt.wantChain)
			leaf := chain[0]
			require.Equal(t, names, leaf.DNSNames)
			require.Empty(t, leaf.URIs)
			require.False(t, leaf.IsCA)
			require.WithinDuration(t, time.Now().Add(ttl), leaf.NotAfter, time.Minute)
			verifyAgainstRoot(t, tt.ca.Root(), leaf, chain[1:], x509.ExtKeyUsageServerAuth)
			for _, n := range names {
				require.NoError(t, leaf.VerifyHostname(n))
			}
			pair, err := tls.X509KeyPair(certPEM, keyPEM)
			require.NoError(t, err, "usable as a TLS serving certificate")
			if tt.rsaKey {
				require.IsType(t, &rsa.PrivateKey{}, pair.PrivateKey)
			} else {
				require.IsType(t, &ecdsa.PrivateKey{}, pair.PrivateKey)
			}
		})
	}
}

func TestServingCertNeedsNames(t *testing.T) {
	_, _, err := newSelfSignedCA(t, &MemoryStore{}).ServingCert(nil, time.Hour)
	require.ErrorContains(t, err, "no DNS names")
}
