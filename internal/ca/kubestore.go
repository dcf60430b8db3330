package ca

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
)

// KubeStore is the SecretStore backed by the Kubernetes API.
type KubeStore struct {
	// Client is a typed core/v1 client, e.g. clientset.CoreV1().
	Client typedcorev1.SecretsGetter
}

// Get implements SecretStore; a missing Secret wraps ErrNotFound.
func (k KubeStore) Get(ctx context.Context, ns, name string) (map[string][]byte, error) {
	s, err := k.Client.Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("getting secret %s/%s: %w", ns, name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("getting secret %s/%s: %w", ns, name, err)
	}
	return s.Data, nil
}

// Create implements SecretStore; an existing Secret wraps ErrAlreadyExists.
// istio-ca-secret gets istiod's Secret type istio.io/ca-root.
func (k KubeStore) Create(ctx context.Context, ns, name string, data map[string][]byte) error {
	s := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Data:       data,
	}
	if name == SelfSignedSecretName {
		s.Type = SelfSignedSecretType
	}
	_, err := k.Client.Secrets(ns).Create(ctx, s, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating secret %s/%s: %w", ns, name, ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("creating secret %s/%s: %w", ns, name, err)
	}
	return nil
}
