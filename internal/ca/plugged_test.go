package ca

import (
	"context"
	"crypto/x509"
	"errors"
	"maps"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/testcerts"
)

func TestPluggedCALoading(t *testing.T) {
	good := newPlugged(t)
	other := newPlugged(t)
	leaf := testcerts.NewLeaf("not a CA", good.root, testcerts.Options{KeyUsage: x509.KeyUsageDigitalSignature, Organization: []string{"test"}})
	noSign := testcerts.NewIntermediate("CA without certSign", good.root, testcerts.Options{KeyUsage: x509.KeyUsageDigitalSignature})
	with := func(k string, v []byte) map[string][]byte {
		d := maps.Clone(good.data)
		d[k] = v
		return d
	}
	without := func(k string) map[string][]byte {
		d := maps.Clone(good.data)
		delete(d, k)
		return d
	}
	tests := []struct {
		name    string
		data    map[string][]byte
		wantErr string
	}{
		{name: "good", data: good.data},
		{name: "empty cert-chain.pem", data: with(CertChainKey, []byte{})},
		{name: "ca-cert.pem missing", data: without(CACertKey), wantErr: "secret cacerts: key ca-cert.pem is missing or empty"},
		{name: "ca-key.pem missing", data: without(CAKeyKey), wantErr: "secret cacerts: key ca-key.pem is missing or empty"},
		{name: "root-cert.pem missing", data: without(RootCertKey), wantErr: "secret cacerts: key root-cert.pem is missing or empty"},
		{name: "cert-chain.pem missing", data: without(CertChainKey), wantErr: "secret cacerts: key cert-chain.pem is missing"},
		{name: "ca-cert.pem not PEM", data: with(CACertKey, []byte("junk")), wantErr: "secret cacerts key ca-cert.pem: no PEM certificate found"},
		{name: "ca-key.pem not PEM", data: with(CAKeyKey, []byte("junk")), wantErr: "secret cacerts key ca-key.pem: no PEM private key found"},
		{name: "root-cert.pem not PEM", data: with(RootCertKey, []byte("junk")), wantErr: "secret cacerts key root-cert.pem: no PEM certificate found"},
		{name: "cert-chain.pem not PEM", data: with(CertChainKey, []byte("junk")), wantErr: "secret cacerts key cert-chain.pem: no PEM certificate found"},
		{name: "key of another CA", data: with(CAKeyKey, other.inter.KeyPEM), wantErr: "secret cacerts key ca-key.pem does not match the certificate in ca-cert.pem"},
		{
			name:    "ca-cert.pem from another root",
			data:    with(RootCertKey, other.root.CertPEM),
			wantErr: "secret cacerts key ca-cert.pem does not chain to root-cert.pem",
		},
		{
			name: "ca-cert.pem is not a CA",
			data: map[string][]byte{
				CACertKey: leaf.CertPEM, CAKeyKey: leaf.KeyPEM, RootCertKey: good.root.CertPEM, CertChainKey: good.root.CertPEM,
			},
			wantErr: "secret cacerts key ca-cert.pem: certificate \"CN=not a CA,O=test\" is not a CA",
		},
		{
			name: "ca-cert.pem lacks cert-sign usage",
			data: map[string][]byte{
				CACertKey: noSign.CertPEM, CAKeyKey: noSign.KeyPEM, RootCertKey: good.root.CertPEM, CertChainKey: good.root.CertPEM,
			},
			wantErr: "lacks the certificate-signing key usage",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &MemoryStore{}
			require.NoError(t, store.Create(context.Background(), DefaultNamespace, PluggedSecretName, tt.data))
			c, err := New(context.Background(), store, Options{})
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.ErrorContains(t, err, "loading plug-in CA")
				require.Nil(t, c)
				require.Equal(t, 1, store.Creates(), "a broken cacerts never falls back to creating istio-ca-secret")
				return
			}
			require.NoError(t, err)
			require.Equal(t, SourcePlugged, c.Source())
			require.Equal(t, good.root.CertPEM, c.Root())
			require.Equal(t, 1, store.Creates(), "no istio-ca-secret is created when cacerts exists")
		})
	}
}

// failingStore fails every Get with a non-NotFound error.
type failingStore struct{ MemoryStore }

func (f *failingStore) Get(context.Context, string, string) (map[string][]byte, error) {
	return nil, errors.New("apiserver unavailable")
}

func TestNewStoreErrorIsNotNotFound(t *testing.T) {
	_, err := New(context.Background(), &failingStore{}, Options{})
	require.ErrorContains(t, err, "reading secret istio-system/cacerts: apiserver unavailable")
}
