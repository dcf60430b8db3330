package ca

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/fake"
)

const (
	testRoot     = "-----BEGIN CERTIFICATE-----\nroot\n-----END CERTIFICATE-----\n"
	rootCertWait = 10 * time.Second
	rootCertTick = 5 * time.Millisecond
)

// startRootCertPublisher runs a publisher of testRoot on client until the test ends
// and waits for its initial sync.
func startRootCertPublisher(t *testing.T, client kubernetes.Interface, opts RootCertOptions) *RootCertPublisher {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := NewRootCertPublisher(client, []byte(testRoot), opts)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			require.NoError(t, err)
		case <-time.After(rootCertWait):
			t.Error("Run did not return after cancel")
		}
	})
	require.Eventually(t, p.HasSynced, rootCertWait, rootCertTick, "publisher never synced")
	return p
}

// rcNamespace is a Namespace object with optional labels.
func rcNamespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// rcTerminating is a Namespace being deleted.
func rcTerminating(name string) *corev1.Namespace {
	ns := rcNamespace(name, nil)
	ns.Status.Phase = corev1.NamespaceTerminating
	return ns
}

// getRootCert returns ns's istio-ca-root-cert ConfigMap, nil if absent.
func getRootCert(t *testing.T, client kubernetes.Interface, ns string) *corev1.ConfigMap {
	t.Helper()
	cm, err := client.CoreV1().ConfigMaps(ns).Get(context.Background(), RootCertConfigMapName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	require.NoError(t, err)
	return cm
}

// isPublished reports whether cm holds testRoot and istiod's label.
func isPublished(cm *corev1.ConfigMap) bool {
	return cm != nil && cm.Data[RootCertConfigMapKey] == testRoot && cm.Labels[RootCertConfigMapLabel] == "true"
}

// waitPublished waits until ns holds the published ConfigMap.
func waitPublished(t *testing.T, client kubernetes.Interface, ns string) *corev1.ConfigMap {
	t.Helper()
	var cm *corev1.ConfigMap
	require.Eventually(t, func() bool {
		cm = getRootCert(t, client, ns)
		return isPublished(cm)
	}, rootCertWait, rootCertTick, "namespace %s never got %s", ns, RootCertConfigMapName)
	return cm
}

// rcCreateNamespace creates ns through the API.
func rcCreateNamespace(t *testing.T, client kubernetes.Interface, ns *corev1.Namespace) {
	t.Helper()
	_, err := client.CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{})
	require.NoError(t, err)
}

// namespaceBarrier creates a fresh namespace and waits for its ConfigMap. The
// publisher handles namespace events in order on one worker, so every
// namespace event before it has been handled once this returns.
func namespaceBarrier(t *testing.T, client kubernetes.Interface, name string) {
	t.Helper()
	rcCreateNamespace(t, client, rcNamespace(name, nil))
	waitPublished(t, client, name)
}

// configMapBarrier deletes ns's ConfigMap and waits for its recreation: every
// ConfigMap event before it has been handled once this returns.
func configMapBarrier(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	deleteRootCert(t, client, ns)
	waitPublished(t, client, ns)
}

// deleteRootCert deletes ns's istio-ca-root-cert ConfigMap.
func deleteRootCert(t *testing.T, client kubernetes.Interface, ns string) {
	t.Helper()
	err := client.CoreV1().ConfigMaps(ns).Delete(context.Background(), RootCertConfigMapName, metav1.DeleteOptions{})
	require.NoError(t, err)
}

// newRootCertClient is a fake clientset holding objs.
func newRootCertClient(objs ...*corev1.Namespace) *fake.Clientset {
	c := fake.NewClientset()
	for _, o := range objs {
		if err := c.Tracker().Add(o); err != nil {
			panic(err)
		}
	}
	return c
}
