package ca

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sync makes namespace name's istio-ca-root-cert ConfigMap hold the root.
// It reads the informer caches and falls back to the API only after a
// conflicting write.
func (p *RootCertPublisher) sync(ctx context.Context, name string) error {
	ns, err := p.namespaces.Get(name)
	if apierrors.IsNotFound(err) {
		return nil // deleted; its ConfigMaps go with it
	}
	if err != nil {
		return fmt.Errorf("reading namespace %s from cache: %w", name, err)
	}
	if !p.wants(ns) {
		return nil
	}
	cm, err := p.configMaps.ConfigMaps(name).Get(RootCertConfigMapName)
	if apierrors.IsNotFound(err) {
		return p.create(ctx, name)
	}
	if err != nil {
		return fmt.Errorf("reading ConfigMap %s/%s from cache: %w", name, RootCertConfigMapName, err)
	}
	return p.update(ctx, cm)
}

// create creates the ConfigMap in ns. Like istiod it gives up quietly when
// the namespace is gone or terminating, and logs rather than retries when
// forbidden. If it already exists (the cache was behind), the live object is
// read and corrected instead.
func (p *RootCertPublisher) create(ctx context.Context, ns string) error {
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name:      RootCertConfigMapName,
			Namespace: ns,
			Labels:    map[string]string{RootCertConfigMapLabel: "true"},
		},
		Data: map[string]string{RootCertConfigMapKey: p.root},
	}
	_, err := p.client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{})
	switch {
	case err == nil:
		p.log.Debug("created root certificate ConfigMap", "namespace", ns)
		return nil
	case apierrors.IsAlreadyExists(err):
		return p.updateLive(ctx, ns)
	case namespaceGone(err):
		return nil
	case apierrors.IsForbidden(err):
		p.log.Warn("not permitted to create root certificate ConfigMap, skipping",
			"namespace", ns, "configmap", RootCertConfigMapName, "error", err)
		return nil
	}
	return fmt.Errorf("creating ConfigMap %s/%s: %w", ns, RootCertConfigMapName, err)
}

// update corrects cm if needed; on a conflict it re-reads the live object
// and tries once more, leaving further conflicts to the queue's retry.
func (p *RootCertPublisher) update(ctx context.Context, cm *corev1.ConfigMap) error {
	err := p.tryUpdate(ctx, cm)
	if apierrors.IsConflict(err) {
		return p.updateLive(ctx, cm.Namespace)
	}
	return err
}

// updateLive reads the ConfigMap in ns from the API and corrects it.
func (p *RootCertPublisher) updateLive(ctx context.Context, ns string) error {
	cm, err := p.client.CoreV1().ConfigMaps(ns).Get(ctx, RootCertConfigMapName, metav1.GetOptions{})
	if err != nil {
		// Includes NotFound (deleted meanwhile): the retry will create it.
		return fmt.Errorf("re-reading ConfigMap %s/%s: %w", ns, RootCertConfigMapName, err)
	}
	return p.tryUpdate(ctx, cm)
}

// tryUpdate writes the corrected cm if it differs from what we publish.
func (p *RootCertPublisher) tryUpdate(ctx context.Context, cm *corev1.ConfigMap) error {
	want, changed := p.corrected(cm)
	if !changed {
		return nil
	}
	_, err := p.client.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, want, metav1.UpdateOptions{})
	if err != nil {
		// A NotFound here means the ConfigMap vanished: the retry creates it.
		return fmt.Errorf("updating ConfigMap %s/%s: %w", cm.Namespace, RootCertConfigMapName, err)
	}
	p.log.Info("restored root certificate ConfigMap", "namespace", cm.Namespace)
	return nil
}

// corrected returns a copy of cm with our root and label, and whether
// anything changed. Other keys and labels are kept, as istiod merges too.
func (p *RootCertPublisher) corrected(cm *corev1.ConfigMap) (*corev1.ConfigMap, bool) {
	out := cm.DeepCopy()
	changed := false
	if v, ok := out.Data[RootCertConfigMapKey]; !ok || v != p.root {
		if out.Data == nil {
			out.Data = map[string]string{}
		}
		out.Data[RootCertConfigMapKey] = p.root
		changed = true
	}
	if _, ok := out.BinaryData[RootCertConfigMapKey]; ok {
		// A key may not be in both data and binaryData.
		delete(out.BinaryData, RootCertConfigMapKey)
		changed = true
	}
	if out.Labels[RootCertConfigMapLabel] != "true" {
		if out.Labels == nil {
			out.Labels = map[string]string{}
		}
		out.Labels[RootCertConfigMapLabel] = "true"
		changed = true
	}
	return out, changed
}

// namespaceGone reports an error meaning the namespace no longer accepts
// objects: deleted, or terminating.
func namespaceGone(err error) bool {
	return apierrors.IsNotFound(err) || apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause)
}
