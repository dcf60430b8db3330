package translate

import (
	"strings"
	"sync"
)

// A view is the part of a scope's config that does not depend on the
// workload's own labels beyond what selects it: the outbound listeners,
// routes and clusters of a sidecar (everything but its inbound side), or the
// whole config of a proxyless gRPC client. Scopes of one namespace whose
// labels select the same Sidecar and satisfy the same VirtualService
// sourceLabels share one view: it is built once per Index and its resources
// (the same proto values) are shared by their Outputs, so a namespace of a
// thousand workloads costs one outbound translation, not a thousand.
type view struct {
	once sync.Once
	out  *Output // sorted; never modified after once
}

// views memoises views by key for one Index.
type views struct {
	mu sync.Mutex
	m  map[string]*view
}

// get returns the view for key, building it with build on first use.
func (vs *views) get(key string, build func() *Output) *Output {
	vs.mu.Lock()
	if vs.m == nil {
		vs.m = map[string]*view{}
	}
	v, ok := vs.m[key]
	if !ok {
		v = &view{}
		vs.m[key] = v
	}
	vs.mu.Unlock()
	v.once.Do(func() {
		v.out = build()
		v.out.sort()
	})
	return v.out
}

// viewKey names the view of the builder's scope: proxy type, generator,
// namespace, the Sidecar that applies, and which sourceLabels matches of
// the mesh's VirtualServices the scope's labels satisfy.
func (b *builder) viewKey() string {
	var k strings.Builder
	k.WriteString(string(b.scope.Type))
	k.WriteByte('|')
	k.WriteString(b.scope.Generator)
	k.WriteByte('|')
	k.WriteString(b.scope.Namespace)
	k.WriteByte('|')
	k.WriteString(b.sc.name())
	k.WriteByte('|')
	if b.autoMTLS() {
		k.WriteString("automtls|")
	}
	labels := b.scope.LabelMap()
	for _, sl := range b.x.sourceLabels {
		if labelsMatch(sl, labels) && labels != nil {
			k.WriteByte('1')
		} else {
			k.WriteByte('0')
		}
	}
	return k.String()
}

// indexSourceLabels collects the sourceLabels of every HTTP, TCP and TLS
// match of the mesh's VirtualServices (delegated routes included): the only
// way a workload's labels change its outbound routes and listeners.
func (x *Index) indexSourceLabels() {
	add := func(sl map[string]string) {
		if len(sl) > 0 {
			x.sourceLabels = append(x.sourceLabels, sl)
		}
	}
	for _, vs := range x.vsAll {
		for _, r := range vs.spec.GetHttp() { // delegates already merged in
			for _, m := range r.GetMatch() {
				add(m.GetSourceLabels())
			}
		}
		for _, r := range vs.spec.GetTcp() {
			for _, m := range r.GetMatch() {
				add(m.GetSourceLabels())
			}
		}
		for _, r := range vs.spec.GetTls() {
			for _, m := range r.GetMatch() {
				add(m.GetSourceLabels())
			}
		}
	}
}

// merged returns a new Output holding shared's resources and extra's,
// sorted; neither is modified (extra is sorted).
func merged(shared *Output, extra *Output) *Output {
	extra.sort()
	out := &Output{
		Listeners: concat(shared.Listeners, extra.Listeners),
		Routes:    concat(shared.Routes, extra.Routes),
		Clusters:  concat(shared.Clusters, extra.Clusters),
		Endpoints: concat(shared.Endpoints, extra.Endpoints),
		shared:    shared, own: extra,
	}
	out.sort()
	return out
}

func concat[T any](a, b []T) []T {
	out := make([]T, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}
