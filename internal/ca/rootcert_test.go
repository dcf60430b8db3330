package ca

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestRootCertPublishesToExistingNamespaces(t *testing.T) {
	client := newRootCertClient(
		rcNamespace("default", nil), rcNamespace("foo", nil), rcNamespace("kube-system", nil),
		rcNamespace("kube-public", nil), rcNamespace("kube-node-lease", nil),
		rcNamespace("local-path-storage", nil), rcTerminating("going"),
	)
	startRootCertPublisher(t, client, RootCertOptions{})

	// HasSynced means every initial namespace has been handled once.
	for _, ns := range []string{"default", "foo", "kube-system"} {
		cm := getRootCert(t, client, ns)
		require.True(t, isPublished(cm), "namespace %s: %+v", ns, cm)
		assert.Equal(t, map[string]string{RootCertConfigMapKey: testRoot}, cm.Data)
		assert.Equal(t, map[string]string{RootCertConfigMapLabel: "true"}, cm.Labels)
	}
	for _, ns := range []string{"kube-public", "kube-node-lease", "local-path-storage", "going"} {
		assert.Nil(t, getRootCert(t, client, ns), "namespace %s", ns)
	}
}

func TestRootCertNewNamespaceGetsConfigMap(t *testing.T) {
	client := newRootCertClient()
	startRootCertPublisher(t, client, RootCertOptions{})

	rcCreateNamespace(t, client, rcNamespace("late", nil))
	waitPublished(t, client, "late")
}

func TestRootCertRestoresEditedConfigMap(t *testing.T) {
	client := newRootCertClient(rcNamespace("foo", nil))
	startRootCertPublisher(t, client, RootCertOptions{})
	cm := waitPublished(t, client, "foo")

	cm.Data = map[string]string{RootCertConfigMapKey: "tampered", "extra": "kept"}
	cm.Labels = map[string]string{"team": "a"}
	_, err := client.CoreV1().ConfigMaps("foo").Update(context.Background(), cm, metav1.UpdateOptions{})
	require.NoError(t, err)

	got := waitPublished(t, client, "foo")
	assert.Equal(t, "kept", got.Data["extra"], "other keys are kept, as istiod merges")
	assert.Equal(t, "a", got.Labels["team"], "other labels are kept")
}

func TestRootCertRecreatesDeletedConfigMap(t *testing.T) {
	client := newRootCertClient(rcNamespace("foo", nil))
	startRootCertPublisher(t, client, RootCertOptions{})
	waitPublished(t, client, "foo")

	deleteRootCert(t, client, "foo")
	waitPublished(t, client, "foo")
}

func TestRootCertIgnoresOtherConfigMaps(t *testing.T) {
	client := newRootCertClient(rcNamespace("foo", nil))
	startRootCertPublisher(t, client, RootCertOptions{})
	waitPublished(t, client, "foo")

	other := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "not-root", Namespace: "foo"},
		Data:       map[string]string{"k": "v"},
	}
	_, err := client.CoreV1().ConfigMaps("foo").Create(context.Background(), other, metav1.CreateOptions{})
	require.NoError(t, err)
	configMapBarrier(t, client, "foo")

	got, err := client.CoreV1().ConfigMaps("foo").Get(context.Background(), "not-root", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"k": "v"}, got.Data)
}

func TestRootCertSkipsSystemNamespaces(t *testing.T) {
	client := newRootCertClient(rcNamespace("foo", nil))
	startRootCertPublisher(t, client, RootCertOptions{})
	waitPublished(t, client, "foo")

	for _, ns := range []string{"kube-public", "kube-node-lease", "local-path-storage"} {
		rcCreateNamespace(t, client, rcNamespace(ns, nil))
	}
	// Someone else's ConfigMap of that name in a skipped namespace is left alone.
	theirs := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: RootCertConfigMapName, Namespace: "kube-public"},
		Data:       map[string]string{RootCertConfigMapKey: "theirs"},
	}
	_, err := client.CoreV1().ConfigMaps("kube-public").Create(context.Background(), theirs, metav1.CreateOptions{})
	require.NoError(t, err)
	namespaceBarrier(t, client, "barrier")
	configMapBarrier(t, client, "foo")

	assert.Nil(t, getRootCert(t, client, "kube-node-lease"))
	assert.Nil(t, getRootCert(t, client, "local-path-storage"))
	assert.Equal(t, "theirs", getRootCert(t, client, "kube-public").Data[RootCertConfigMapKey])
}

func TestRootCertSkipsTerminatingNamespace(t *testing.T) {
	client := newRootCertClient(rcNamespace("foo", nil), rcNamespace("going", nil))
	startRootCertPublisher(t, client, RootCertOptions{})
	waitPublished(t, client, "going")

	_, err := client.CoreV1().Namespaces().Update(context.Background(), rcTerminating("going"), metav1.UpdateOptions{})
	require.NoError(t, err)
	namespaceBarrier(t, client, "barrier")
	deleteRootCert(t, client, "going")
	configMapBarrier(t, client, "foo")

	assert.Nil(t, getRootCert(t, client, "going"), "a terminating namespace gets no new ConfigMap")
}

func TestRootCertFilter(t *testing.T) {
	client := newRootCertClient(
		rcNamespace("in", map[string]string{"mesh": "on"}),
		rcNamespace("out", map[string]string{"mesh": "off"}),
	)
	var acceptAll atomic.Bool
	filter := func(ns *corev1.Namespace) bool {
		return acceptAll.Load() || ns.Labels["mesh"] != "off"
	}
	p := startRootCertPublisher(t, client, RootCertOptions{Filter: filter})

	assert.True(t, isPublished(getRootCert(t, client, "in")))
	assert.Nil(t, getRootCert(t, client, "out"), "filtered-out namespace")

	rcCreateNamespace(t, client, rcNamespace("out2", map[string]string{"mesh": "off"}))
	namespaceBarrier(t, client, "barrier")
	assert.Nil(t, getRootCert(t, client, "out2"), "filtered-out new namespace")

	acceptAll.Store(true)
	p.Resync()
	waitPublished(t, client, "out")
	waitPublished(t, client, "out2")
}

func TestRootCertRunStopsOnCancel(t *testing.T) {
	client := newRootCertClient(rcNamespace("foo", nil))
	p := NewRootCertPublisher(client, []byte(testRoot), RootCertOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	require.Eventually(t, p.HasSynced, rootCertWait, rootCertTick)

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(rootCertWait):
		t.Fatal("Run did not return after cancel")
	}
	assert.Error(t, p.Run(context.Background()), "Run is single-use")
}

func TestRootCertRunWithCancelledContext(t *testing.T) {
	p := NewRootCertPublisher(newRootCertClient(), []byte(testRoot), RootCertOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(rootCertWait):
		t.Fatal("Run did not return")
	}
	assert.False(t, p.HasSynced())
}
