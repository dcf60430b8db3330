package kube

import (
	"errors"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"

	meshconfig "istio.io/api/mesh/v1alpha1"

	"github.com/meshd/meshd/discovery/meshcfg"
	"github.com/meshd/meshd/internal/model"
)

// applyInitial reads the mesh config and every cached object once the
// informers have synced and applies them in a single Store.Apply, so the
// first snapshot is complete.
func (p *Provider) applyInitial() {
	var batch []model.Change
	if c, ok := p.initialMeshConfig(); ok {
		batch = append(batch, c)
	}
	batch = append(batch, p.setSelectors(p.currentMesh().GetDiscoverySelectors())...)
	batch = append(batch, meshChanges(p.q.take())...)
	batch = append(batch, p.allObjects()...)
	p.opts.Store.Apply(batch)
}

// meshChanges keeps the MeshConfig changes of what the handlers queued
// between the sync and the listing. The listing that follows supersedes the
// rest: every queued object change was read from a cache the listing reads
// later, and was converted before the discoverySelectors were installed, so
// keeping it could apply an older version after the listing's or admit an
// object of a namespace the selectors exclude.
func meshChanges(queued []model.Change) []model.Change {
	var out []model.Change
	for _, c := range queued {
		if c.Kind == model.KindMeshConfig {
			out = append(out, c)
		}
	}
	return out
}

// allObjects converts every cached object of every admitted namespace.
func (p *Provider) allObjects() []model.Change {
	var out []model.Change
	for kind, inf := range p.informers {
		if kind == "ConfigMap" {
			continue
		}
		for _, o := range inf.GetStore().List() {
			out = append(out, p.changeFor(model.Kind(kind), o)...)
		}
	}
	return out
}

// namespaceObjects returns upserts (or deletes) for every cached object of ns,
// including the Namespace itself.
func (p *Provider) namespaceObjects(ns string, upsert bool) []model.Change {
	var out []model.Change
	now := time.Now()
	for kind, inf := range p.informers {
		if kind == "ConfigMap" {
			continue
		}
		var objs []any
		if kind == string(model.KindNamespace) {
			if o, ok, _ := inf.GetStore().GetByKey(ns); ok {
				objs = append(objs, o)
			}
		} else {
			objs, _ = inf.GetIndexer().ByIndex(cache.NamespaceIndex, ns)
		}
		for _, o := range objs {
			if upsert {
				out = append(out, p.changeFor(model.Kind(kind), o)...)
				continue
			}
			m := o.(metav1.Object)
			c := model.Change{Kind: model.Kind(kind), Namespace: m.GetNamespace(), Name: m.GetName(), Seen: now}
			p.forget(c.Key())
			out = append(out, c)
		}
	}
	return out
}

// initialMeshConfig returns the change installing the mesh config: the static
// one (--mesh-config), else the istio ConfigMap, else istiod's defaults.
func (p *Provider) initialMeshConfig() (model.Change, bool) {
	if s := p.opts.StaticMeshConfig; s != nil {
		p.setMesh(s)
		return meshcfg.Change(s.Spec, s.Source), true
	}
	inf := p.informers["ConfigMap"]
	o, ok, _ := inf.GetStore().GetByKey(p.opts.RootNamespace + "/" + p.opts.MeshConfigName)
	if !ok {
		p.log.Info("no mesh ConfigMap; using istiod's defaults", "configmap", p.opts.RootNamespace+"/"+p.opts.MeshConfigName)
		return model.Change{}, false
	}
	c, _ := p.meshChange(o.(*corev1.ConfigMap))
	return c, true
}

// meshHandler follows the istio ConfigMap: a change is applied without a
// restart, including new discoverySelectors.
func (p *Provider) meshHandler() cache.ResourceEventHandlerFuncs {
	onChange := func(obj any) {
		cm, ok := obj.(*corev1.ConfigMap)
		if !ok || cm.Name != p.opts.MeshConfigName || !p.synced.Load() {
			return
		}
		p.selMu.Lock() // new selectors: exclude the object handlers (lockSelection)
		defer p.selMu.Unlock()
		c, loaded := p.meshChange(cm)
		p.q.push(c)
		if loaded {
			p.q.push(p.setSelectors(p.currentMesh().GetDiscoverySelectors())...)
		}
	}
	onDelete := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == p.opts.MeshConfigName {
			p.log.Warn("mesh ConfigMap deleted; keeping the last mesh config until it is recreated",
				"configmap", cm.Namespace+"/"+cm.Name)
		}
	}
	return cache.ResourceEventHandlerFuncs{AddFunc: onChange, UpdateFunc: func(_, o any) { onChange(o) }, DeleteFunc: onDelete}
}

// meshChange parses the ConfigMap's "mesh" key and returns the Store change
// and whether a new config loaded. A config that does not parse yields an
// error change (the Store keeps the previous config in force and lists the
// error in /debug/configz and meshd_config_errors), a log line and an Event.
func (p *Provider) meshChange(cm *corev1.ConfigMap) (model.Change, bool) {
	source := "kube:" + cm.Namespace + "/" + cm.Name
	cfg, warning, err := meshcfg.Parse([]byte(cm.Data["mesh"]))
	if err != nil {
		oe := model.ObjectError{Kind: "ConfigMap", Namespace: cm.Namespace, Name: cm.Name, Source: "kube",
			Field: "data.mesh", Message: err.Error()}
		p.report("ConfigMap/"+cm.Namespace+"/"+cm.Name, cm, oe)
		return model.Change{Kind: model.KindMeshConfig, Name: "mesh", Err: &oe, Seen: time.Now()}, false
	}
	p.forget("ConfigMap/" + cm.Namespace + "/" + cm.Name)
	if warning != "" && p.reportedOnce(source, warning) {
		p.log.Warn(warning, "configmap", cm.Namespace+"/"+cm.Name)
	}
	mc := &model.MeshConfig{Spec: cfg, Source: source}
	p.setMesh(mc)
	p.log.Info("mesh config loaded", "source", source, "rootNamespace", cfg.GetRootNamespace(),
		"discoverySelectors", len(cfg.GetDiscoverySelectors()))
	return meshcfg.Change(cfg, source), true
}

func (p *Provider) setMesh(m *model.MeshConfig) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.mesh = m
}

func (p *Provider) currentMesh() *meshconfig.MeshConfig {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.mesh == nil {
		return model.DefaultMeshConfig()
	}
	return p.mesh.Spec
}

// asObjectError returns err as an ObjectError naming the object.
func asObjectError(kind model.Kind, m metav1.Object, err error) model.ObjectError {
	var oe *model.ObjectError
	if errors.As(err, &oe) {
		out := *oe
		out.Source = "kube"
		return out
	}
	return model.ObjectError{Kind: kind, Namespace: m.GetNamespace(), Name: m.GetName(), Source: "kube", Message: err.Error()}
}
