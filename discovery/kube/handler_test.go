package kube

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	meshconfig "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/meshd/meshd/internal/model"
)

// testProvider returns a Provider whose informers are never started: tests
// fill their caches directly.
func testProvider(t *testing.T, mesh *meshconfig.MeshConfig) *Provider {
	t.Helper()
	idx := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	p := &Provider{
		opts: Options{Domain: "cluster.local", Store: model.NewStore()},
		log:  slog.Default(), sel: allNamespaces(), reported: map[string]string{},
		informers: map[string]cache.SharedIndexInformer{
			string(model.KindNamespace): cache.NewSharedIndexInformer(&cache.ListWatch{}, &corev1.Namespace{}, 0, idx),
			string(model.KindPod):       cache.NewSharedIndexInformer(&cache.ListWatch{}, &corev1.Pod{}, 0, idx),
		},
	}
	if mesh != nil {
		p.opts.StaticMeshConfig = &model.MeshConfig{Spec: mesh, Source: "test"}
	}
	p.q.init()
	return p
}

func pod(namespace, name, ip, rv string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, ResourceVersion: rv, Labels: map[string]string{"app": name}},
		Status:     corev1.PodStatus{PodIP: ip, Phase: corev1.PodRunning},
	}
}

// TestPodStatusChurnIsNotAChange: a Pod update that changes nothing meshd
// reads (readiness, phase, deletion) queues nothing, so the EndpointSlice
// change next to it keeps the endpoint fast path.
func TestPodStatusChurnIsNotAChange(t *testing.T) {
	p := testProvider(t, nil)
	p.synced.Store(true)
	h := p.handler(model.KindPod)
	old := pod("shop", "a", "10.1.0.1", "1")

	churn := pod("shop", "a", "10.1.0.1", "2")
	churn.Status.Phase = corev1.PodSucceeded
	h.UpdateFunc(old, churn)
	assert.Empty(t, p.q.take(), "status-only update")

	moved := pod("shop", "a", "10.1.0.2", "3")
	h.UpdateFunc(churn, moved)
	assert.Len(t, p.q.take(), 1, "a new IP is a change")

	relabelled := pod("shop", "a", "10.1.0.2", "4")
	relabelled.Labels["version"] = "v2"
	h.UpdateFunc(moved, relabelled)
	assert.Len(t, p.q.take(), 1, "new labels are a change")
}

// TestInitialApplyIsTheListing: changes queued between the sync and the
// listing neither roll an object back to an older version nor admit an
// object of a namespace the discoverySelectors exclude.
func TestInitialApplyIsTheListing(t *testing.T) {
	p := testProvider(t, &meshconfig.MeshConfig{DiscoverySelectors: []*meshconfig.LabelSelector{
		{MatchLabels: map[string]string{"mesh": "on"}},
	}})
	nsInf, podInf := p.informers[string(model.KindNamespace)], p.informers[string(model.KindPod)]
	require.NoError(t, nsInf.GetIndexer().Add(ns("shop", map[string]string{"mesh": "on"})))
	require.NoError(t, nsInf.GetIndexer().Add(ns("hidden", nil)))
	p.synced.Store(true)

	// Handlers run before applyInitial installs the selectors: every
	// namespace is still admitted.
	h := p.handler(model.KindPod)
	h.UpdateFunc(pod("shop", "a", "10.1.0.0", "1"), pod("shop", "a", "10.1.0.1", "2"))
	h.AddFunc(pod("hidden", "b", "10.2.0.1", "1"))
	// The caches have moved on since.
	require.NoError(t, podInf.GetIndexer().Add(pod("shop", "a", "10.1.0.2", "3")))
	require.NoError(t, podInf.GetIndexer().Add(pod("hidden", "b", "10.2.0.1", "1")))

	p.applyInitial()
	snap := p.opts.Store.Current()
	a, ok := snap.Object(model.KindPod, "shop", "a")
	require.True(t, ok)
	assert.Equal(t, "10.1.0.2", a.(*model.Workload).IP, "the listed (newest) version")
	_, ok = snap.Object(model.KindPod, "hidden", "b")
	assert.False(t, ok, "namespace hidden is not selected")
	_, ok = snap.Object(model.KindMeshConfig, "", "mesh")
	assert.True(t, ok)
}

// TestMeshConfigMapErrorReportedAgain: a ConfigMap that breaks again, with
// the same error, after it was fixed is reported again.
func TestMeshConfigMapErrorReportedAgain(t *testing.T) {
	p := testProvider(t, nil)
	rec := record.NewFakeRecorder(10)
	p.events = &eventReporter{recorder: rec}
	cm := func(mesh string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: "istio"},
			Data: map[string]string{"mesh": mesh}}
	}
	for i, data := range []string{"{", "rootNamespace: istio-system", "{"} {
		_, ok := p.meshChange(cm(data))
		assert.Equal(t, i == 1, ok, data)
	}
	assert.Len(t, rec.Events, 2, "both breakages carry a Warning Event")
}
