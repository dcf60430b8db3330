package kube

import (
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/meshd/meshd/discovery/convert"
	"github.com/meshd/meshd/internal/model"
)

// setupInformers creates one informer per watched kind and registers the
// event handlers. Pods and Secrets are trimmed to what meshd reads, to save
// memory (and, for Secrets, to hold no data meshd does not use).
func (p *Provider) setupInformers() error {
	core := p.kubeInf.Core().V1()
	net := p.istInf.Networking().V1()
	podInf := core.Pods().Informer()
	if err := podInf.SetTransform(trimPod); err != nil {
		return fmt.Errorf("pod informer: %w", err)
	}
	p.informers = map[string]cache.SharedIndexInformer{
		string(model.KindNamespace):       core.Namespaces().Informer(),
		string(model.KindService):         core.Services().Informer(),
		string(model.KindEndpointSlice):   p.kubeInf.Discovery().V1().EndpointSlices().Informer(),
		string(model.KindPod):             podInf,
		string(model.KindVirtualService):  net.VirtualServices().Informer(),
		string(model.KindDestinationRule): net.DestinationRules().Informer(),
		string(model.KindGateway):         net.Gateways().Informer(),
		string(model.KindServiceEntry):    net.ServiceEntries().Informer(),
		string(model.KindSidecar):         net.Sidecars().Informer(),
	}
	p.informers[string(model.KindPeerAuthentication)] = p.istInf.Security().V1().PeerAuthentications().Informer()
	p.informers[string(model.KindAuthorizationPolicy)] = p.istInf.Security().V1().AuthorizationPolicies().Informer()
	p.informers[string(model.KindRequestAuthentication)] = p.istInf.Security().V1().RequestAuthentications().Informer()
	if p.opts.WatchSecrets {
		secretInf := p.secInf.Core().V1().Secrets().Informer()
		if err := secretInf.SetTransform(trimSecret); err != nil {
			return fmt.Errorf("secret informer: %w", err)
		}
		p.informers[string(model.KindSecret)] = secretInf
	}
	for kind, inf := range p.informers {
		if _, err := inf.AddEventHandler(p.handler(model.Kind(kind))); err != nil {
			return fmt.Errorf("%s informer: %w", kind, err)
		}
	}
	if p.opts.StaticMeshConfig == nil {
		mesh := p.meshInf.Core().V1().ConfigMaps().Informer()
		if _, err := mesh.AddEventHandler(p.meshHandler()); err != nil {
			return fmt.Errorf("configmap informer: %w", err)
		}
		p.informers["ConfigMap"] = mesh
	}
	return nil
}

// trimPod keeps only the fields convert.Pod reads.
func trimPod(obj any) (any, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: pod.Name, Namespace: pod.Namespace, Labels: pod.Labels,
			UID: pod.UID, ResourceVersion: pod.ResourceVersion, CreationTimestamp: pod.CreationTimestamp},
		Spec:   corev1.PodSpec{ServiceAccountName: pod.Spec.ServiceAccountName, NodeName: pod.Spec.NodeName},
		Status: corev1.PodStatus{PodIP: pod.Status.PodIP, PodIPs: pod.Status.PodIPs, Phase: pod.Status.Phase},
	}, nil
}

// handler turns informer events into queued Store changes. Before the
// informers have synced nothing is queued: the initial state is read from
// the caches in one go (applyInitial).
func (p *Provider) handler(kind model.Kind) cache.ResourceEventHandlerFuncs {
	return cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { p.upsert(kind, obj) },
		UpdateFunc: func(old, obj any) {
			if kind == model.KindPod && samePod(old, obj) {
				return // status churn (readiness, phase, deletion) meshd does not read
			}
			if kind == model.KindSecret && sameSecret(old, obj) {
				return // metadata edits: the credential is the same
			}
			p.upsert(kind, obj)
		},
		DeleteFunc: func(obj any) { p.remove(kind, obj) },
	}
}

// samePod reports whether two versions of a Pod agree on every field
// convert.Pod reads. Pod status changes on every readiness flip and at the
// start of every termination, next to the EndpointSlice change that matters;
// passing it on would turn each such endpoint-only push into a full one.
func samePod(a, b any) bool {
	pa, ok1 := a.(*corev1.Pod)
	pb, ok2 := b.(*corev1.Pod)
	return ok1 && ok2 && pa.Name == pb.Name && pa.Namespace == pb.Namespace &&
		pa.Status.PodIP == pb.Status.PodIP && pa.Spec.ServiceAccountName == pb.Spec.ServiceAccountName &&
		maps.Equal(pa.Labels, pb.Labels)
}

func (p *Provider) upsert(kind model.Kind, obj any) {
	if !p.synced.Load() {
		return
	}
	unlock := p.lockSelection(kind)
	defer unlock()
	if kind == model.KindNamespace {
		p.q.push(p.reselect()...)
	}
	p.q.push(p.changeFor(kind, obj)...)
}

// lockSelection orders handlers against changes of the selection: a
// Namespace event (which may add or delete a namespace's objects) excludes
// every other handler, so an object's upsert can never be queued after the
// deletes of its namespace leaving the selection. Other handlers share the
// lock and run concurrently.
func (p *Provider) lockSelection(kind model.Kind) (unlock func()) {
	if kind == model.KindNamespace {
		p.selMu.Lock()
		return p.selMu.Unlock
	}
	p.selMu.RLock()
	return p.selMu.RUnlock
}

func (p *Provider) remove(kind model.Kind, obj any) {
	if !p.synced.Load() {
		return
	}
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return
	}
	unlock := p.lockSelection(kind)
	defer unlock()
	c := model.Change{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), Seen: time.Now()}
	p.forget(c.Key())
	p.q.push(c)
	if kind == model.KindNamespace {
		p.q.push(p.reselect()...)
	}
}

// changeFor converts one object. Objects in namespaces outside the
// discoverySelectors produce nothing; conversion failures produce an error
// change (the Store keeps the last good version) and a Warning Event.
func (p *Provider) changeFor(kind model.Kind, obj any) []model.Change {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil
	}
	ns := m.GetNamespace()
	if kind == model.KindNamespace {
		ns = m.GetName()
	}
	if !p.selected(ns) {
		return nil
	}
	c := model.Change{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), Seen: time.Now()}
	_, v, err := convert.Object(obj, p.opts.Domain)
	if err != nil {
		oe := asObjectError(kind, m, err)
		c.Err = &oe
		p.report(c.Key(), obj, oe)
		return []model.Change{c}
	}
	p.forget(c.Key())
	switch o := v.(type) {
	case *model.Config:
		o.Source = "kube"
	case *model.Secret:
		o.Source = "kube"
		p.noteExpiry(o)
	}
	c.Object = v // nil for a Secret that holds no credential: deleted, if it was one
	return []model.Change{c}
}
