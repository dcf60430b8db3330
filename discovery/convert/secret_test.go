package convert

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/internal/testcerts"
)

func secret(typ corev1.SecretType, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "gw-cert"}, Type: typ, Data: data}
}

func TestSecretConversion(t *testing.T) {
	leaf := testcerts.NewLeaf("gw.example", nil, testcerts.Options{})
	tlsData := map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": leaf.KeyPEM}

	kind, v, err := Object(secret(corev1.SecretTypeTLS, tlsData), "")
	require.NoError(t, err)
	assert.Equal(t, model.KindSecret, kind)
	s := v.(*model.Secret)
	assert.Equal(t, "shop", s.Namespace)
	assert.Equal(t, string(leaf.CertPEM), s.CertChain)

	// Not credentials: no value at all (an untyped nil, so a Change made
	// from it deletes rather than stores a nil pointer).
	for name, sec := range map[string]*corev1.Secret{
		"opaque password":       secret(corev1.SecretTypeOpaque, map[string][]byte{"password": []byte("x")}),
		"service account token": secret(corev1.SecretTypeServiceAccountToken, map[string][]byte{"ca.crt": leaf.CertPEM, "token": []byte("t")}),
	} {
		kind, v, err := Object(sec, "")
		require.NoError(t, err, name)
		assert.Equal(t, model.KindSecret, kind, name)
		assert.True(t, v == nil, "%s: got %#v", name, v)
		assert.False(t, IsCredentialSecret(sec), name)
	}
	assert.True(t, IsCredentialSecret(secret(corev1.SecretTypeOpaque, map[string][]byte{"cacert": leaf.CertPEM})))
	assert.True(t, IsCredentialSecret(secret(corev1.SecretTypeTLS, nil)))

	// Errors name the object and the data key.
	bad := map[string][]byte{"tls.crt": leaf.CertPEM, "tls.key": testcerts.NewLeaf("other", nil, testcerts.Options{}).KeyPEM}
	_, v, err = Object(secret(corev1.SecretTypeTLS, bad), "")
	assert.True(t, v == nil)
	var oe *model.ObjectError
	require.True(t, errors.As(err, &oe))
	assert.Equal(t, model.ObjectError{Kind: model.KindSecret, Namespace: "shop", Name: "gw-cert", Field: "data[tls.key]",
		Message: "private key does not match the certificate (the first certificate of the chain)"}, *oe)

	_, err = Secret(secret(corev1.SecretTypeTLS, map[string][]byte{}))
	require.True(t, errors.As(err, &oe))
	assert.Equal(t, "data", oe.Field)
}
