package model

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/testcerts"
)

func TestNewSecretLayouts(t *testing.T) {
	ca := testcerts.NewCA("root", testcerts.Options{})
	leaf := testcerts.NewLeaf("gw.example", ca, testcerts.Options{})
	other := testcerts.NewLeaf("other.example", ca, testcerts.Options{})
	crl := ca.CRL()
	cases := []struct {
		name           string
		data           map[string][]byte
		cert, ca, crl  string // data keys expected
		nilSecret      bool
		field, message string
	}{
		{name: "kubernetes.io/tls", data: map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM}, cert: "tls.crt"},
		{name: "tls with ca.crt and ca.crl", data: map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM, "ca.crt": ca.CertPEM, "ca.crl": crl},
			cert: "tls.crt", ca: "ca.crt", crl: "ca.crl"},
		{name: "cert-manager's empty ca.crt is no CA", data: map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM, "ca.crt": {}}, cert: "tls.crt"},
		{name: "generic wins over tls, as istiod", data: map[string][]byte{"cert": leaf.CertPEM, "key": leaf.KeyPEM, "tls.crt": other.CertPEM, "tls.key": other.KeyPEM, "cacert": ca.CertPEM},
			cert: "cert", ca: "cacert"},
		{name: "empty generic pair falls back to tls", data: map[string][]byte{"cert": {}, "key": {}, "tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM}, cert: "tls.crt"},
		{name: "CA only (<name>-cacert)", data: map[string][]byte{"cacert": ca.CertPEM}, ca: "cacert"},
		{name: "CA only, ca.crt", data: map[string][]byte{"ca.crt": ca.CertPEM}, ca: "ca.crt"},
		{name: "not a credential", data: map[string][]byte{"password": []byte("hunter2")}, nilSecret: true},
		{name: "a lone generic key is not TLS", data: map[string][]byte{"key": []byte("api-key")}, nilSecret: true},
		{name: "certificate not PEM", data: map[string][]byte{"tls.crt": []byte("garbage"), "tls.key": leaf.KeyPEM},
			field: "data[tls.crt]", message: "not PEM"},
		{name: "key not PEM", data: map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": []byte("garbage")},
			field: "data[tls.key]", message: "not PEM"},
		{name: "key of another certificate", data: map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": other.KeyPEM},
			field: "data[tls.key]", message: "does not match the certificate"},
		{name: "empty pair", data: map[string][]byte{"tls.crt": {}, "tls.key": {}},
			field: "data[tls.crt]", message: "present but empty"},
		{name: "tls.crt without tls.key", data: map[string][]byte{"tls.crt": leaf.CertPEM},
			field: "data[tls.key]", message: "no private key"},
		{name: "CA not PEM", data: map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM, "ca.crt": []byte("nope")},
			field: "data[ca.crt]", message: "not PEM"},
		{name: "CRL not PEM", data: map[string][]byte{"cacert": ca.CertPEM, "crl": []byte("nope")},
			field: "data[crl]", message: "no X509 CRL"},
		{name: "RSA 1024 refused as Envoy does", data: pair(testcerts.NewLeaf("weak", nil, testcerts.Options{RSABits: 1024})),
			field: "data[tls.crt]", message: "2048 bits or more"},
		{name: "RSA 2048", data: pair(testcerts.NewLeaf("rsa", nil, testcerts.Options{RSABits: 2048})), cert: "tls.crt"},
		{name: "Ed25519, which Envoy loads", data: pair(testcerts.NewLeaf("ed", nil, testcerts.Options{Ed25519: true})), cert: "tls.crt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, oe := NewSecret("shop", "gw-cert", c.data)
			if c.field != "" {
				require.NotNil(t, oe)
				assert.Nil(t, s)
				assert.Equal(t, KindSecret, oe.Kind)
				assert.Equal(t, "shop", oe.Namespace)
				assert.Equal(t, "gw-cert", oe.Name)
				assert.Equal(t, c.field, oe.Field)
				assert.Contains(t, oe.Message, c.message)
				return
			}
			require.Nil(t, oe)
			if c.nilSecret {
				assert.Nil(t, s)
				return
			}
			require.NotNil(t, s)
			assert.Equal(t, c.cert, s.Keys.Cert)
			assert.Equal(t, c.ca, s.Keys.CA)
			assert.Equal(t, c.crl, s.Keys.CRL)
			assert.Equal(t, c.cert != "", s.HasCertificate())
			assert.Equal(t, c.ca != "", s.HasCA())
			if c.cert != "" {
				assert.Equal(t, string(c.data[c.cert]), s.CertChain)
				assert.False(t, s.NotAfter.IsZero())
			}
		})
	}
}

func pair(c *testcerts.Cert) map[string][]byte {
	return map[string][]byte{"tls.crt": c.CertPEM, "tls.key": c.KeyPEM}
}

// TestExpiredSecretIsServedWithANote: an expired (or not yet valid)
// certificate is no error, only a note.
func TestExpiredSecretIsServedWithANote(t *testing.T) {
	now := time.Now()
	old := testcerts.NewLeaf("old", nil, testcerts.Options{NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	s, oe := NewSecret("shop", "old", pair(old))
	require.Nil(t, oe)
	assert.Contains(t, s.Expiry(now), "expired at")
	assert.Empty(t, s.Expiry(now.Add(-36*time.Hour)))
	assert.Contains(t, s.Expiry(now.Add(-72*time.Hour)), "not valid before")

	caOnly, oe := NewSecret("shop", "ca", map[string][]byte{"ca.crt": old.CertPEM})
	require.Nil(t, oe)
	assert.Empty(t, caOnly.Expiry(now), "a CA bundle has no leaf to expire")
}

// TestSecretNeverPrintsItsKey: formatting or logging a Secret leaves the
// private key out.
func TestSecretNeverPrintsItsKey(t *testing.T) {
	c := testcerts.NewLeaf("gw", nil, testcerts.Options{})
	s, oe := NewSecret("shop", "gw", pair(c))
	require.Nil(t, oe)
	var logged strings.Builder
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "secret", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%+v", s), fmt.Sprintf("%#v", s), fmt.Sprintf("%s", s), logged.String()} {
		assert.NotContains(t, out, "PRIVATE KEY")
		assert.Contains(t, out, "shop/gw")
	}
}

// TestSecretChangesKeepTheIndex: a Secret change, even a broken one,
// leaves the services' index as it was (Secrets are read by name).
func TestSecretChangesKeepTheIndex(t *testing.T) {
	st := NewStore()
	first := st.Apply([]Change{svcChange("ns", "a")})
	require.Len(t, first.Services(), 1) // builds the index
	c := testcerts.NewLeaf("gw", nil, testcerts.Options{})
	s, _ := NewSecret("ns", "gw", pair(c))
	second := st.Apply([]Change{{Kind: KindSecret, Namespace: "ns", Name: "gw", Object: s}})
	assert.True(t, second.built.Load(), "the index is derived, not rebuilt")
	got, ok := second.Secret("ns", "gw")
	require.True(t, ok)
	assert.Same(t, s, got)
	_, ok = second.Secret("other", "gw")
	assert.False(t, ok)

	bad := &ObjectError{Kind: KindSecret, Namespace: "ns", Name: "gw", Field: "data[tls.key]", Message: "broken"}
	third := st.Apply([]Change{{Kind: KindSecret, Namespace: "ns", Name: "gw", Err: bad}})
	assert.True(t, third.built.Load())
	got, ok = third.Secret("ns", "gw")
	require.True(t, ok, "a broken rotation keeps the last good Secret")
	assert.Same(t, s, got)
	oe, ok := third.ObjectError(KindSecret, "ns", "gw")
	require.True(t, ok)
	assert.Equal(t, *bad, oe)
}

// TestEnvoyKeyTypes: the curves Envoy 1.40 loads (checked with it: P-256,
// P-384, P-521 load; secp256k1 and RSA under 2048 bits do not).
func TestEnvoyKeyTypes(t *testing.T) {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k, err := ecdsa.GenerateKey(c, rand.Reader)
		require.NoError(t, err)
		assert.Empty(t, envoyKeyType(&k.PublicKey), c.Params().Name)
	}
	k, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	require.NoError(t, err)
	assert.Contains(t, envoyKeyType(&k.PublicKey), "P-224")
}
