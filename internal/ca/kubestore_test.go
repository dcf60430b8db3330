package ca

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestKubeStore(t *testing.T) {
	ctx := context.Background()
	client := fake.NewClientset()
	store := KubeStore{Client: client.CoreV1()}

	_, err := store.Get(ctx, "istio-system", "cacerts")
	require.ErrorIs(t, err, ErrNotFound)

	a, err := New(ctx, store, Options{})
	require.NoError(t, err)
	require.Equal(t, SourceSelfSigned, a.Source())
	s, err := client.CoreV1().Secrets("istio-system").Get(ctx, SelfSignedSecretName, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, corev1.SecretType("istio.io/ca-root"), s.Type)

	err = store.Create(ctx, "istio-system", SelfSignedSecretName, map[string][]byte{})
	require.ErrorIs(t, err, ErrAlreadyExists)

	b, err := New(ctx, store, Options{})
	require.NoError(t, err)
	require.Equal(t, a.Root(), b.Root())
}
