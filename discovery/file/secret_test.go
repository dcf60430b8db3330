package file

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/internal/testcerts"
)

// indent indents PEM text for a YAML block scalar.
func indent(b []byte) string {
	return "    " + strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", "\n    ")
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func TestDecodeSecret(t *testing.T) {
	c := testcerts.NewLeaf("gw.example", nil, testcerts.Options{})
	ca := testcerts.NewCA("root", testcerts.Options{})

	// data, base64 as in the API; the CA from stringData.
	doc := fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: gw-cert, namespace: edge}\ntype: kubernetes.io/tls\n"+
		"data:\n  tls.crt: %s\n  tls.key: %s\nstringData:\n  ca.crt: |\n%s\n", b64(c.CertPEM), b64(c.KeyPEM), indent(ca.CertPEM))
	res, ok := decodeDoc([]byte(doc), "s.yaml#1", 1, "")
	require.True(t, ok)
	require.Nil(t, res.err, "%v", res.err)
	s := res.obj.(*model.Secret)
	assert.Equal(t, "edge", s.Namespace)
	assert.Equal(t, string(c.CertPEM), s.CertChain)
	assert.Equal(t, strings.TrimSpace(string(ca.CertPEM)), strings.TrimSpace(s.CA))
	assert.Equal(t, "s.yaml#1", s.Source)

	// stringData wins over data.
	other := testcerts.NewLeaf("other", nil, testcerts.Options{})
	doc = fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: gw-cert}\n"+
		"data: {tls.crt: %s, tls.key: %s}\nstringData:\n  tls.crt: |\n%s\n  tls.key: |\n%s\n",
		b64(c.CertPEM), b64(c.KeyPEM), indent(other.CertPEM), indent(other.KeyPEM))
	res, ok = decodeDoc([]byte(doc), "s.yaml#2", 1, "")
	require.True(t, ok)
	require.Nil(t, res.err, "%v", res.err)
	assert.Equal(t, "default", res.obj.(*model.Secret).Namespace)
	assert.Contains(t, res.obj.(*model.Secret).CertChain, strings.TrimSpace(string(other.CertPEM))[:60])

	// Not a credential: nothing, and no error.
	res, ok = decodeDoc([]byte("apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: x}\n"), "s.yaml#3", 1, "")
	require.True(t, ok)
	assert.Nil(t, res.err)
	assert.Nil(t, res.obj)

	// Errors name the object, source and data key.
	doc = fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: gw-cert, namespace: edge}\n"+
		"data: {tls.crt: %s, tls.key: %s}\n", b64(c.CertPEM), b64(other.KeyPEM))
	res, ok = decodeDoc([]byte(doc), "s.yaml#4", 1, "")
	require.True(t, ok)
	require.NotNil(t, res.err)
	assert.Equal(t, model.ObjectError{Kind: model.KindSecret, Namespace: "edge", Name: "gw-cert", Source: "s.yaml#4",
		Field: "data[tls.key]", Message: "private key does not match the certificate (the first certificate of the chain)"}, *res.err)

	res, ok = decodeDoc([]byte("apiVersion: v1\nkind: Secret\nmetadata: {name: x}\ndata: {tls.crt: '!!notbase64'}\n"), "s.yaml#5", 1, "")
	require.True(t, ok)
	require.NotNil(t, res.err)
	assert.Equal(t, "data[tls.crt]", res.err.Field)
	assert.Contains(t, res.err.Message, "not base64")
}

// TestSecretRotationInDirectory: a Secret edited in the directory replaces
// the served one; a broken edit keeps it and reports the error; an expired
// certificate is served with a warning.
func TestSecretRotationInDirectory(t *testing.T) {
	dir := t.TempDir()
	p, logs := newProvider(t, dir)
	secretDoc := func(c *testcerts.Cert, key []byte) string {
		return fmt.Sprintf("apiVersion: v1\nkind: Secret\nmetadata: {name: gw-cert, namespace: edge}\ntype: kubernetes.io/tls\n"+
			"data: {tls.crt: %s, tls.key: %s}\n", b64(c.CertPEM), b64(key))
	}
	v1 := testcerts.NewLeaf("v1", nil, testcerts.Options{})
	writeFile(t, dir, "secret.yaml", secretDoc(v1, v1.KeyPEM))
	require.NoError(t, p.Load())
	s, ok := p.Store.Current().Secret("edge", "gw-cert")
	require.True(t, ok)
	assert.Equal(t, string(v1.CertPEM), s.CertChain)

	v2 := testcerts.NewLeaf("v2", nil, testcerts.Options{NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	writeFile(t, dir, "secret.yaml", secretDoc(v2, v1.KeyPEM))
	require.NoError(t, p.Load())
	s, _ = p.Store.Current().Secret("edge", "gw-cert")
	assert.Equal(t, string(v1.CertPEM), s.CertChain, "a broken rotation keeps the last good credential")
	oe, ok := p.Store.Current().ObjectError(model.KindSecret, "edge", "gw-cert")
	require.True(t, ok)
	assert.Equal(t, "data[tls.key]", oe.Field)

	writeFile(t, dir, "secret.yaml", secretDoc(v2, v2.KeyPEM))
	require.NoError(t, p.Load())
	s, _ = p.Store.Current().Secret("edge", "gw-cert")
	assert.Equal(t, string(v2.CertPEM), s.CertChain, "an expired certificate is served")
	assert.Contains(t, logs.String(), "expired at")
	assert.NotContains(t, logs.String(), "PRIVATE KEY")
}
