package ca

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/tools/cache"
)

// rootCertFieldSelector restricts a ConfigMap list/watch to
// istio-ca-root-cert, as istiod's filtered client does.
func rootCertFieldSelector(o *metav1.ListOptions) {
	o.FieldSelector = fields.OneTermEqualSelector("metadata.name", RootCertConfigMapName).String()
}

// namespaceHandler queues a namespace when it is added or changes (labels a
// Filter may read, or its phase). A deleted namespace takes its ConfigMap
// with it, so deletions are ignored.
func (p *RootCertPublisher) namespaceHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.enqueueNamespace(obj) },
		UpdateFunc: func(_, obj any) { p.enqueueNamespace(obj) },
	}
}

// configMapHandler queues the namespace of an istio-ca-root-cert ConfigMap
// that is added, edited or deleted; the sync decides whether to act.
func (p *RootCertPublisher) configMapHandler() cache.ResourceEventHandler {
	return cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { p.enqueueConfigMap(obj) },
		UpdateFunc: func(_, obj any) { p.enqueueConfigMap(obj) },
		DeleteFunc: func(obj any) { p.enqueueConfigMap(obj) },
	}
}

// enqueueNamespace queues a Namespace object by name.
func (p *RootCertPublisher) enqueueNamespace(obj any) {
	if m := objectMeta(obj); m != nil {
		p.queue.Add(m.GetName())
	}
}

// enqueueConfigMap queues the namespace of a ConfigMap named
// istio-ca-root-cert; others are ignored (a client that does not honour the
// field selector may deliver them).
func (p *RootCertPublisher) enqueueConfigMap(obj any) {
	m := objectMeta(obj)
	if m == nil || m.GetName() != RootCertConfigMapName || m.GetNamespace() == "" {
		return
	}
	p.queue.Add(m.GetNamespace())
}

// objectMeta returns the metadata of an informer object, unwrapping a
// deletion tombstone; nil if there is none.
func objectMeta(obj any) metav1.Object {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	m, err := meta.Accessor(obj)
	if err != nil {
		return nil
	}
	return m
}

// rootCertSkippedNamespaces are istiod's inject.IgnoredNamespaces minus
// kube-system, which istiod keeps so ztunnel can run there.
var rootCertSkippedNamespaces = map[string]bool{
	"kube-public":        true,
	"kube-node-lease":    true,
	"local-path-storage": true,
}

// wants reports whether ns should hold the ConfigMap: not a skipped system
// namespace, not being deleted, and accepted by the Filter.
func (p *RootCertPublisher) wants(ns *corev1.Namespace) bool {
	if rootCertSkippedNamespaces[ns.Name] {
		return false
	}
	if ns.Status.Phase == corev1.NamespaceTerminating || ns.DeletionTimestamp != nil {
		return false
	}
	return p.filter == nil || p.filter(ns)
}
