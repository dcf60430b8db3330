package kube

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	meshconfig "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/internal/testcerts"
)

func tlsSecret(ns, name string, c *testcerts.Cert) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1",
			Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": "{...the data again...}"}},
		Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": c.CertPEM, "tls.key": c.KeyPEM, "extra": []byte("not read")},
	}
}

// TestSecretFieldSelectorIsIstiods: the Secrets listed are istiod's.
func TestSecretFieldSelectorIsIstiods(t *testing.T) {
	assert.Equal(t, "type!=helm.sh/release.v1,type!=kubernetes.io/service-account-token", secretFieldSelector)
}

// TestTrimSecretKeepsOnlyCredentials: the informer cache holds the data
// keys Istio reads of credential Secrets, and nothing of other Secrets.
func TestTrimSecretKeepsOnlyCredentials(t *testing.T) {
	c := testcerts.NewLeaf("gw", nil, testcerts.Options{})
	got, err := trimSecret(tlsSecret("shop", "gw", c))
	require.NoError(t, err)
	s := got.(*corev1.Secret)
	assert.Equal(t, map[string][]byte{"tls.crt": c.CertPEM, "tls.key": c.KeyPEM}, s.Data)
	assert.Empty(t, s.Annotations)
	assert.Equal(t, "1", s.ResourceVersion)

	got, err = trimSecret(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("hunter2")}})
	require.NoError(t, err)
	assert.Equal(t, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "db"}}, got)

	tomb := cache.DeletedFinalStateUnknown{Key: "shop/db"}
	got, err = trimSecret(tomb)
	require.NoError(t, err)
	assert.Equal(t, tomb, got)
}

// TestSecretHandler: a credential Secret becomes a model.Secret; a
// metadata edit is no change; a Secret that stops holding a credential is
// deleted; a broken rotation is an error change (the Store keeps the last
// good credential); Secrets of namespaces outside the discoverySelectors
// are not used.
func TestSecretHandler(t *testing.T) {
	p := testProvider(t, &meshconfig.MeshConfig{DiscoverySelectors: []*meshconfig.LabelSelector{
		{MatchLabels: map[string]string{"mesh": "on"}},
	}})
	require.NoError(t, p.informers[string(model.KindNamespace)].GetIndexer().Add(ns("shop", map[string]string{"mesh": "on"})))
	require.NoError(t, p.informers[string(model.KindNamespace)].GetIndexer().Add(ns("hidden", nil)))
	p.synced.Store(true)
	p.applyInitial()
	rec := record.NewFakeRecorder(10)
	p.events = &eventReporter{recorder: rec}
	h := p.handler(model.KindSecret)
	trim := func(s *corev1.Secret) *corev1.Secret {
		o, err := trimSecret(s)
		require.NoError(t, err)
		return o.(*corev1.Secret)
	}
	c := testcerts.NewLeaf("gw", nil, testcerts.Options{})
	v1 := trim(tlsSecret("shop", "gw", c))

	h.AddFunc(v1)
	q := p.q.take()
	require.Len(t, q, 1)
	s, ok := q[0].Object.(*model.Secret)
	require.True(t, ok)
	assert.Equal(t, string(c.CertPEM), s.CertChain)
	assert.Equal(t, "kube", s.Source)

	relabelled := v1.DeepCopy()
	relabelled.ResourceVersion, relabelled.Labels = "2", map[string]string{"team": "edge"}
	h.UpdateFunc(v1, relabelled)
	assert.Empty(t, p.q.take(), "a metadata edit is no change")

	broken := relabelled.DeepCopy()
	broken.ResourceVersion, broken.Data["tls.key"] = "3", testcerts.NewLeaf("other", nil, testcerts.Options{}).KeyPEM
	h.UpdateFunc(relabelled, broken)
	q = p.q.take()
	require.Len(t, q, 1)
	require.NotNil(t, q[0].Err)
	assert.Equal(t, "data[tls.key]", q[0].Err.Field)
	require.Len(t, rec.Events, 1, "a Warning Event on the Secret")
	assert.Contains(t, <-rec.Events, "data[tls.key]: private key does not match")

	opaque := trim(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "gw", ResourceVersion: "4"},
		Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("x")}})
	h.UpdateFunc(broken, opaque)
	q = p.q.take()
	require.Len(t, q, 1)
	assert.True(t, q[0].Object == nil && q[0].Err == nil, "no longer a credential: deleted")

	h.AddFunc(trim(tlsSecret("hidden", "gw", c)))
	assert.Empty(t, p.q.take(), "namespace hidden is not selected")
}
