package kube

import (
	"bytes"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"

	"github.com/meshd/meshd/discovery/convert"
	"github.com/meshd/meshd/internal/model"
)

// secretFieldSelector is istiod's (credentials/kube SecretsFieldSelector):
// Helm releases and service account tokens, the bulk of a cluster's
// Secrets and never a gateway credential, are not even listed. A field
// selector cannot ask for "TLS-looking" Secrets (generic Secrets with
// tls.crt or cacert count too), so the rest is trimmed as it arrives
// (trimSecret).
var secretFieldSelector = fields.AndSelectors(
	fields.OneTermNotEqualSelector("type", "helm.sh/release.v1"),
	fields.OneTermNotEqualSelector("type", string(corev1.SecretTypeServiceAccountToken)),
).String()

// newSecretInformers returns the informer factory of Secrets, with the
// field selector (a factory's list options apply to all its informers).
func newSecretInformers(kc kubernetes.Interface) kubeinformers.SharedInformerFactory {
	return kubeinformers.NewSharedInformerFactoryWithOptions(kc, 0,
		kubeinformers.WithTweakListOptions(func(o *metav1.ListOptions) { o.FieldSelector = secretFieldSelector }))
}

// trimSecret keeps what convert.Secret reads: of a Secret that may hold a
// TLS credential its type and the data keys Istio reads, of any other
// Secret its name alone. The informer's cache holds no other data (nor
// annotations, where kubectl keeps a copy of the data).
func trimSecret(obj any) (any, error) {
	s, ok := obj.(*corev1.Secret)
	if !ok {
		return obj, nil
	}
	out := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: s.Name, Namespace: s.Namespace,
		UID: s.UID, ResourceVersion: s.ResourceVersion, CreationTimestamp: s.CreationTimestamp}}
	if !convert.IsCredentialSecret(s) {
		return out, nil
	}
	out.Type = s.Type
	for _, k := range model.SecretDataKeys {
		if v, ok := s.Data[k]; ok {
			if out.Data == nil {
				out.Data = map[string][]byte{}
			}
			out.Data[k] = v
		}
	}
	return out, nil
}

// sameSecret reports whether two versions of a (trimmed) Secret agree on
// everything convert.Secret reads: a label or annotation edit is no
// change, and pushes nothing.
func sameSecret(a, b any) bool {
	sa, ok1 := a.(*corev1.Secret)
	sb, ok2 := b.(*corev1.Secret)
	if !ok1 || !ok2 || sa.Name != sb.Name || sa.Namespace != sb.Namespace || sa.Type != sb.Type || len(sa.Data) != len(sb.Data) {
		return false
	}
	for k, v := range sa.Data {
		w, ok := sb.Data[k]
		if !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

// noteExpiry logs, once per Secret and note, a credential whose
// certificate is expired or not valid yet: it is served all the same (as
// Envoy accepts it and istiod serves it), but clients will refuse it.
func (p *Provider) noteExpiry(s *model.Secret) {
	note := s.Expiry(time.Now())
	if note == "" || !p.reportedOnce("expiry/"+s.Namespace+"/"+s.Name, note) {
		return
	}
	p.log.Warn("TLS credential not valid now", "namespace", s.Namespace, "name", s.Name, "note", note)
}
