package xds

import (
	"maps"
	"slices"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/meshd/meshd/translate"
)

// comparer compares the resources of two Outputs of a scope. Scopes share
// resource values (translate's views), so each pair of values is compared,
// rendered and diffed once per what-if.
type comparer struct {
	// budget is how many bytes of diff text the report may still hold;
	// truncated is set once a diff was left out for lack of it.
	budget    int
	truncated bool
	pairs     map[[2]proto.Message]*pairResult
	sizes     map[proto.Message]int64
	lines     map[proto.Message][]string
}

// pairResult is the comparison of two values of one resource.
type pairResult struct {
	equal bool
	diff  string // "" until needed (and never for secrets)
}

func newComparer(budget int) *comparer {
	return &comparer{budget: budget, pairs: map[[2]proto.Message]*pairResult{},
		sizes: map[proto.Message]int64{}, lines: map[proto.Message][]string{}}
}

// resource is a named xDS resource.
type resource struct {
	name string
	msg  proto.Message
}

func resources[T proto.Message](items []T, name func(T) string) []resource {
	out := make([]resource, len(items))
	for i, it := range items {
		out[i] = resource{name(it), it}
	}
	return out
}

// outputs compares two Outputs of one scope, type by type, and returns the
// types that differ, in xDS order of dependence (listeners, routes,
// clusters, endpoints, secrets).
func (c *comparer) outputs(a, b *translate.Output) []WhatIfType {
	var out []WhatIfType
	add := func(t WhatIfType, changed bool) {
		if changed {
			out = append(out, t)
		}
	}
	add(c.compare("listeners", listeners(a), listeners(b), true))
	add(c.compare("routes", routes(a), routes(b), true))
	add(c.compare("clusters", clusters(a), clusters(b), true))
	add(c.compare("endpoints", endpoints(a), endpoints(b), true))
	// Secrets by name only: their content (private keys) is never shown.
	add(c.compare("secrets", secrets(a), secrets(b), false))
	return out
}

func listeners(o *translate.Output) []resource {
	return resources(o.Listeners, (*listener.Listener).GetName)
}

func routes(o *translate.Output) []resource {
	return resources(o.Routes, (*route.RouteConfiguration).GetName)
}

func clusters(o *translate.Output) []resource {
	return resources(o.Clusters, (*cluster.Cluster).GetName)
}

func endpoints(o *translate.Output) []resource {
	return resources(o.Endpoints, (*endpoint.ClusterLoadAssignment).GetClusterName)
}

func secrets(o *translate.Output) []resource {
	return resources(o.Secrets, (*tlsv3.Secret).GetName)
}

// compare compares one type's resources (each list sorted by name, as an
// Output's are) and reports whether anything differs.
func (c *comparer) compare(typ string, a, b []resource, withDiff bool) (WhatIfType, bool) {
	t := WhatIfType{Type: typ}
	old := make(map[string]proto.Message, len(a))
	for _, r := range a {
		old[r.name] = r.msg
	}
	cur := make(map[string]bool, len(b))
	var diffs strings.Builder
	for _, r := range b {
		cur[r.name] = true
		prev, ok := old[r.name]
		switch {
		case !ok:
			t.Added = append(t.Added, r.name)
			t.BytesPerProxy += c.size(r.msg)
		case !c.equal(prev, r.msg):
			t.Changed = append(t.Changed, r.name)
			t.BytesPerProxy += c.size(r.msg)
			if withDiff {
				diffs.WriteString(c.diff(typ+"/"+r.name, prev, r.msg))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(old)) {
		if !cur[name] {
			t.Removed = append(t.Removed, name)
		}
	}
	t.Diff = diffs.String()
	return t, len(t.Added)+len(t.Removed)+len(t.Changed) > 0
}

// equal compares two values of a resource by content, once per pair.
func (c *comparer) equal(a, b proto.Message) bool {
	if a == b {
		return true
	}
	p := c.pairs[[2]proto.Message{a, b}]
	if p == nil {
		p = &pairResult{equal: proto.Equal(a, b)}
		c.pairs[[2]proto.Message{a, b}] = p
	}
	return p.equal
}

// diff is the unified diff of two values of a resource named name, or ""
// once the report's diff budget is spent.
func (c *comparer) diff(name string, a, b proto.Message) string {
	p := c.pairs[[2]proto.Message{a, b}]
	if p.diff == "" {
		p.diff = unifiedDiff(name+" (current)", name+" (with the change)", c.render(a), c.render(b), 3)
	}
	if len(p.diff) > c.budget {
		c.truncated = true
		return ""
	}
	c.budget -= len(p.diff)
	return p.diff
}

// size is the marshalled size of a resource, as it is sent.
func (c *comparer) size(m proto.Message) int64 {
	n, ok := c.sizes[m]
	if !ok {
		n = int64(proto.Size(m))
		c.sizes[m] = n
	}
	return n
}

// render is a resource as YAML lines: protojson re-encoded by sigs.k8s.io/yaml,
// whose keys are sorted and whitespace canonical, so the diff is stable.
func (c *comparer) render(m proto.Message) []string {
	if l, ok := c.lines[m]; ok {
		return l
	}
	var out []string
	j, err := protojson.Marshal(m)
	if err == nil {
		var y []byte
		if y, err = yaml.JSONToYAML(j); err == nil {
			out = strings.Split(strings.TrimSuffix(string(y), "\n"), "\n")
		}
	}
	if err != nil {
		out = []string{"# cannot render: " + err.Error()}
	}
	c.lines[m] = out
	return out
}
