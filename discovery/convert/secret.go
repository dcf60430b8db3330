package convert

import (
	corev1 "k8s.io/api/core/v1"

	"github.com/meshd/meshd/internal/model"
)

// Secret types that never hold a gateway credential even when their data
// has a key Istio reads (a service account token Secret has ca.crt).
var nonCredentialTypes = map[corev1.SecretType]bool{
	corev1.SecretTypeServiceAccountToken: true,
	"helm.sh/release.v1":                 true,
	corev1.SecretTypeBootstrapToken:      true,
}

// Secret converts a Kubernetes Secret holding a TLS credential, read as
// istiod reads it (model.NewSecret): type kubernetes.io/tls or a generic
// Secret with cert/key or tls.crt/tls.key, a CA under cacert or ca.crt
// (Istio's <name>-cacert Secrets hold just that). It returns nil and no
// error for a Secret that holds no credential: providers keep no such
// Secret. Data only: stringData is the API server's write-only field,
// which the file provider merges before calling this.
func Secret(s *corev1.Secret) (*model.Secret, error) {
	if s == nil {
		return nil, nilObject(model.KindSecret)
	}
	if nonCredentialTypes[s.Type] {
		return nil, nil
	}
	if fe := checkMeta(&s.ObjectMeta, true); fe != nil {
		return nil, objectError(model.KindSecret, &s.ObjectMeta, fe)
	}
	out, oe := model.NewSecret(s.Namespace, s.Name, s.Data)
	if oe != nil {
		return nil, oe
	}
	if out == nil && s.Type == corev1.SecretTypeTLS {
		return nil, objectError(model.KindSecret, &s.ObjectMeta, errf("data", "a %s Secret without %s and %s",
			corev1.SecretTypeTLS, model.SecretKeyTLSCert, model.SecretKeyTLSKey))
	}
	return out, nil
}

// IsCredentialSecret reports whether a Secret may hold a TLS credential:
// it has one of the data keys model.NewSecret reads and is not of a type
// that never does. Providers drop every other Secret before keeping it.
func IsCredentialSecret(s *corev1.Secret) bool {
	if s == nil || nonCredentialTypes[s.Type] {
		return false
	}
	if s.Type == corev1.SecretTypeTLS {
		return true
	}
	for _, k := range model.SecretDataKeys {
		if _, ok := s.Data[k]; ok {
			return true
		}
	}
	return false
}
