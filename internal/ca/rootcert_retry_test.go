package ca

import (
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	k8stesting "k8s.io/client-go/testing"
)

var rootCertGR = schema.GroupResource{Resource: "configmaps"}

// failConfigMapWrites makes the first n writes (verb "create" or "update")
// in ns fail with err; it returns a counter of all such writes in ns.
func failConfigMapWrites(client *k8stesting.Fake, verb, ns string, n int64, err error) *atomic.Int64 {
	var calls atomic.Int64
	client.PrependReactor(verb, "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() != ns {
			return false, nil, nil
		}
		if calls.Add(1) <= n {
			return true, nil, err
		}
		return false, nil, nil
	})
	return &calls
}

func TestRootCertRetriesFailedCreate(t *testing.T) {
	client := newRootCertClient(rcNamespace("flaky", nil))
	calls := failConfigMapWrites(&client.Fake, "create", "flaky", 3, apierrors.NewInternalError(assert.AnError))
	startRootCertPublisher(t, client, RootCertOptions{})

	waitPublished(t, client, "flaky")
	assert.GreaterOrEqual(t, calls.Load(), int64(4), "three failures, then success")
}

func TestRootCertForbiddenCreateIsNotRetried(t *testing.T) {
	client := newRootCertClient(rcNamespace("locked", nil))
	forbidden := apierrors.NewForbidden(rootCertGR, RootCertConfigMapName, assert.AnError)
	calls := failConfigMapWrites(&client.Fake, "create", "locked", 1000, forbidden)
	startRootCertPublisher(t, client, RootCertOptions{})
	namespaceBarrier(t, client, "barrier")

	assert.Equal(t, int64(1), calls.Load(), "istiod logs and drops a forbidden create")
	assert.Nil(t, getRootCert(t, client, "locked"))
}

func TestRootCertCreateAlreadyExistsRereads(t *testing.T) {
	client := newRootCertClient(rcNamespace("race", nil))
	// Another writer creates a stale ConfigMap just before ours.
	stale := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: RootCertConfigMapName, Namespace: "race"},
		Data:       map[string]string{RootCertConfigMapKey: "stale"},
	}
	var raced atomic.Bool
	client.PrependReactor("create", "configmaps", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() != "race" || !raced.CompareAndSwap(false, true) {
			return false, nil, nil
		}
		assert.NoError(t, client.Tracker().Add(stale))
		return true, nil, apierrors.NewAlreadyExists(rootCertGR, RootCertConfigMapName)
	})
	startRootCertPublisher(t, client, RootCertOptions{})

	waitPublished(t, client, "race")
	assert.True(t, raced.Load())
}

func TestRootCertUpdateConflictRereads(t *testing.T) {
	client := newRootCertClient(rcNamespace("foo", nil))
	conflict := apierrors.NewConflict(rootCertGR, RootCertConfigMapName, assert.AnError)
	calls := failConfigMapWrites(&client.Fake, "update", "foo", 1, conflict)
	startRootCertPublisher(t, client, RootCertOptions{})
	cm := waitPublished(t, client, "foo")

	cm.Data[RootCertConfigMapKey] = "tampered"
	require.NoError(t, client.Tracker().Update(corev1.SchemeGroupVersion.WithResource("configmaps"), cm, "foo"))

	waitPublished(t, client, "foo")
	assert.GreaterOrEqual(t, calls.Load(), int64(2), "conflict, then a successful update")
}

func TestRootCertCorrected(t *testing.T) {
	p := NewRootCertPublisher(newRootCertClient(), []byte(testRoot), RootCertOptions{})
	good := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{RootCertConfigMapLabel: "true"}},
		Data:       map[string]string{RootCertConfigMapKey: testRoot},
	}
	_, changed := p.corrected(good)
	assert.False(t, changed)

	bad := &corev1.ConfigMap{BinaryData: map[string][]byte{RootCertConfigMapKey: []byte("x")}}
	out, changed := p.corrected(bad)
	assert.True(t, changed)
	assert.True(t, isPublished(out))
	assert.Empty(t, out.BinaryData)
	assert.Nil(t, bad.Data, "input is not modified")
}
