package kube

import (
	"fmt"

	meshconfig "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/meshd/meshd/internal/model"
)

// selection is the set of namespaces the discoverySelectors admit.
type selection struct {
	selectors []labels.Selector // empty: every namespace
	included  map[string]bool   // computed from the namespace cache
}

func allNamespaces() *selection { return &selection{included: map[string]bool{}} }

// newSelection converts MeshConfig discoverySelectors (OR'd).
func newSelection(sels []*meshconfig.LabelSelector) (*selection, error) {
	s := allNamespaces()
	for i, ls := range sels {
		k := &metav1.LabelSelector{MatchLabels: ls.GetMatchLabels()}
		for _, e := range ls.GetMatchExpressions() {
			k.MatchExpressions = append(k.MatchExpressions, metav1.LabelSelectorRequirement{
				Key: e.GetKey(), Operator: metav1.LabelSelectorOperator(e.GetOperator()), Values: e.GetValues()})
		}
		sel, err := metav1.LabelSelectorAsSelector(k)
		if err != nil {
			return nil, fmt.Errorf("discoverySelectors[%d]: %w", i, err)
		}
		s.selectors = append(s.selectors, sel)
	}
	return s, nil
}

func (s *selection) admits(ns *corev1.Namespace) bool {
	if len(s.selectors) == 0 {
		return true
	}
	for _, sel := range s.selectors {
		if sel.Matches(labels.Set(ns.Labels)) {
			return true
		}
	}
	return false
}

// selected reports whether objects of namespace ns are used.
func (p *Provider) selected(ns string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.sel.selectors) == 0 || p.sel.included[ns]
}

// reselect recomputes the admitted namespaces from the namespace cache and
// returns the changes for namespaces that entered (every object upserted) or
// left (every object deleted) the selection.
func (p *Provider) reselect() []model.Change {
	p.mu.Lock()
	next := map[string]bool{}
	for _, o := range p.informers[string(model.KindNamespace)].GetStore().List() {
		if ns := o.(*corev1.Namespace); p.sel.admits(ns) {
			next[ns.Name] = true
		}
	}
	prev := p.sel.included
	p.sel.included = next
	everything := len(p.sel.selectors) == 0
	p.mu.Unlock()
	if everything {
		return nil
	}
	var out []model.Change
	for ns := range next {
		if !prev[ns] {
			out = append(out, p.namespaceObjects(ns, true)...)
		}
	}
	for ns := range prev {
		if !next[ns] {
			out = append(out, p.namespaceObjects(ns, false)...)
		}
	}
	return out
}

// setSelectors installs new discoverySelectors; returns the resulting changes.
func (p *Provider) setSelectors(sels []*meshconfig.LabelSelector) []model.Change {
	s, err := newSelection(sels)
	if err != nil {
		p.log.Error("ignoring invalid discoverySelectors; keeping the previous ones", "error", err)
		return nil
	}
	p.mu.Lock()
	prevAll := len(p.sel.selectors) == 0
	s.included = p.sel.included
	if prevAll {
		// Everything was included: start from every namespace so that
		// narrowing the selection deletes what falls out.
		s.included = map[string]bool{}
		for _, o := range p.informers[string(model.KindNamespace)].GetStore().List() {
			s.included[o.(*corev1.Namespace).Name] = true
		}
	}
	p.sel = s
	hooks := p.selHooks
	p.mu.Unlock()
	for _, f := range hooks {
		f()
	}
	if len(s.selectors) == 0 && !prevAll {
		return p.allObjects() // widened to everything
	}
	return p.reselect()
}

// Admits reports whether the discoverySelectors admit ns (every namespace
// when there are none), for components that act per watched namespace,
// such as the root certificate publisher.
func (p *Provider) Admits(ns *corev1.Namespace) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sel.admits(ns)
}

// OnSelectionChange registers f, called after the discoverySelectors change
// (Admits answers differently from then on). f must not block.
func (p *Provider) OnSelectionChange(f func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.selHooks = append(p.selHooks, f)
}
