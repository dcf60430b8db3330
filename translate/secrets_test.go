package translate

import (
	"bytes"
	"testing"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/internal/testcerts"
)

// secretChange stores a Secret made from data (which must be valid).
func secretChange(t *testing.T, ns, name string, data map[string][]byte) model.Change {
	t.Helper()
	s, oe := model.NewSecret(ns, name, data)
	require.Nil(t, oe)
	require.NotNil(t, s)
	return model.Change{Kind: model.KindSecret, Namespace: ns, Name: name, Object: s}
}

func tlsData(c *testcerts.Cert, ca *testcerts.Cert) map[string][]byte {
	d := map[string][]byte{"tls.crt": c.CertPEM, "tls.key": c.KeyPEM}
	if ca != nil {
		d["ca.crt"] = ca.CertPEM
	}
	return d
}

// TestSecretsServeOnlyTheProxysNamespace: whatever name is asked for, the
// secrets of one namespace's proxies come from that namespace's Secrets,
// never another's.
func TestSecretsServeOnlyTheProxysNamespace(t *testing.T) {
	certA := testcerts.NewLeaf("a.example", nil, testcerts.Options{})
	certB := testcerts.NewLeaf("b.example", nil, testcerts.Options{})
	st := model.NewStore()
	snap := st.Apply([]model.Change{
		secretChange(t, "edge-a", "gw-cert", tlsData(certA, nil)),
		secretChange(t, "edge-a", "only-a", tlsData(certA, nil)),
		secretChange(t, "edge-b", "gw-cert", tlsData(certB, nil)),
	})
	x := NewIndex(snap, Options{})
	got, errs := x.Secrets("edge-b", []string{
		"kubernetes://gw-cert", "kubernetes://only-a", "kubernetes://edge-a/gw-cert",
		"kubernetes://edge-b/gw-cert", "kubernetes://only-a-cacert", "kubernetes://edge-a/only-a-cacert",
	})
	names := []string{}
	for _, s := range got {
		names = append(names, s.Name)
		b, err := proto.Marshal(s)
		require.NoError(t, err)
		assert.False(t, bytes.Contains(b, certA.KeyPEM), "namespace edge-a's key in %s", s.Name)
		assert.False(t, bytes.Contains(b, certA.CertPEM), "namespace edge-a's certificate in %s", s.Name)
		assert.True(t, bytes.Contains(b, certB.CertPEM), s.Name)
	}
	assert.Equal(t, []string{"kubernetes://edge-b/gw-cert", "kubernetes://gw-cert"}, names)
	reasons := map[string]string{}
	for _, e := range errs {
		assert.Equal(t, "edge-b", e.Namespace)
		reasons[e.Name] = e.Reason
	}
	assert.Equal(t, map[string]string{
		"kubernetes://only-a":               "Secret edge-b/only-a does not exist or holds no TLS credential",
		"kubernetes://edge-a/gw-cert":       "a Secret of namespace edge-a is never served to proxies of namespace edge-b",
		"kubernetes://only-a-cacert":        "neither Secret edge-b/only-a-cacert nor Secret edge-b/only-a exists with a TLS credential",
		"kubernetes://edge-a/only-a-cacert": "a Secret of namespace edge-a is never served to proxies of namespace edge-b",
	}, reasons)

	// And the other way round.
	got, errs = x.Secrets("edge-a", []string{"kubernetes://gw-cert", "kubernetes://edge-b/gw-cert"})
	require.Len(t, got, 1)
	require.Len(t, errs, 1)
	assert.Equal(t, certA.CertPEM, got[0].GetTlsCertificate().GetCertificateChain().GetInlineBytes())
}

// TestSecretsAsIstiod: kubernetes://<name> is the certificate and key
// alone (even when the Secret has a CA), kubernetes://<name>-cacert the CA
// of Secret <name>-cacert, else of Secret <name>, with its CRL.
func TestSecretsAsIstiod(t *testing.T) {
	ca := testcerts.NewCA("root", testcerts.Options{})
	otherCA := testcerts.NewCA("other root", testcerts.Options{})
	leaf := testcerts.NewLeaf("gw.example", ca, testcerts.Options{})
	withCRL := tlsData(leaf, ca)
	withCRL["ca.crl"] = ca.CRL()
	st := model.NewStore()
	snap := st.Apply([]model.Change{
		secretChange(t, "edge", "mutual", withCRL),
		secretChange(t, "edge", "split", tlsData(leaf, nil)),
		secretChange(t, "edge", "split-cacert", map[string][]byte{"cacert": otherCA.CertPEM}),
		secretChange(t, "edge", "plain", tlsData(leaf, nil)),
		secretChange(t, "edge", "ca-only", map[string][]byte{"ca.crt": ca.CertPEM}),
		{Kind: model.KindSecret, Namespace: "edge", Name: "broken", Err: &model.ObjectError{Kind: model.KindSecret,
			Namespace: "edge", Name: "broken", Field: "data[tls.key]", Message: "private key does not match the certificate"}},
	})
	x := NewIndex(snap, Options{})
	names := []string{
		SecretName("mutual"), CASecretName("mutual"), SecretName("split"), CASecretName("split"),
		SecretName("plain"), CASecretName("plain"), SecretName("ca-only"), CASecretName("ca-only"),
		SecretName("broken"), SecretName("mutual"), // twice: once in the result
	}
	got, errs := x.Secrets("edge", names)
	byName := map[string]*tlsv3.Secret{}
	gotNames := []string{}
	for _, s := range got {
		byName[s.Name] = s
		gotNames = append(gotNames, s.Name)
		require.NoError(t, s.ValidateAll())
	}
	assert.Equal(t, []string{"kubernetes://ca-only-cacert", "kubernetes://mutual", "kubernetes://mutual-cacert",
		"kubernetes://plain", "kubernetes://split", "kubernetes://split-cacert"}, gotNames, "sorted, each once")

	cert := byName["kubernetes://mutual"].GetTlsCertificate()
	assert.Equal(t, leaf.CertPEM, cert.GetCertificateChain().GetInlineBytes())
	assert.Equal(t, leaf.KeyPEM, cert.GetPrivateKey().GetInlineBytes())
	assert.Nil(t, byName["kubernetes://mutual"].GetValidationContext(), "the CA is served under -cacert only")

	vc := byName["kubernetes://mutual-cacert"].GetValidationContext()
	assert.Equal(t, ca.CertPEM, vc.GetTrustedCa().GetInlineBytes(), "from Secret mutual")
	assert.NotEmpty(t, vc.GetCrl().GetInlineBytes())
	assert.Nil(t, byName["kubernetes://mutual-cacert"].GetTlsCertificate())

	assert.Equal(t, otherCA.CertPEM, byName["kubernetes://split-cacert"].GetValidationContext().GetTrustedCa().GetInlineBytes(),
		"Secret split-cacert wins over Secret split")
	assert.NotNil(t, byName["kubernetes://split"].GetTlsCertificate())
	assert.Equal(t, ca.CertPEM, byName["kubernetes://ca-only-cacert"].GetValidationContext().GetTrustedCa().GetInlineBytes())

	reasons := map[string]string{}
	for _, e := range errs {
		reasons[e.Name] = e.Reason
		assert.Contains(t, e.Error(), e.Name)
	}
	assert.Equal(t, map[string]string{
		"kubernetes://plain-cacert": "Secret edge/plain has no CA certificate (data[cacert] or data[ca.crt])",
		"kubernetes://ca-only":      "Secret edge/ca-only has no certificate and key (data[tls.crt] and data[tls.key], or data[cert] and data[key])",
		"kubernetes://broken":       "Secret edge/broken is invalid (data[tls.key]: private key does not match the certificate)",
	}, reasons)

	// Resolved once per Index: every scope gets the very same value.
	again, _ := x.Secrets("edge", []string{"kubernetes://mutual"})
	assert.Same(t, byName["kubernetes://mutual"], again[0])

	bad, errs := x.Secrets("edge", []string{"mutual", "kubernetes://", "kubernetes://a/b/c", "kubernetes://edge/"})
	assert.Empty(t, bad)
	assert.Len(t, errs, 4, "names that are not kubernetes://[namespace/]name")
}

func TestSecretNames(t *testing.T) {
	assert.Equal(t, "kubernetes://gw-cert", SecretName("gw-cert"))
	assert.Equal(t, "kubernetes://gw-cert-cacert", CASecretName("gw-cert"))
}
