package translate

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// vsCatalog holds every VirtualService by "namespace/name", for delegate
// lookups, with the delegates (no hosts) that failed their own checks.
type vsCatalog struct {
	all map[string]*model.Config
	bad map[string]bool
}

// isRoot reports whether a VirtualService delegates any HTTP route.
func isRoot(spec *networking.VirtualService) bool {
	for _, hr := range spec.GetHttp() {
		if hr.GetDelegate() != nil {
			return true
		}
	}
	return false
}

// mergeDelegates returns spec with every delegating HTTP route replaced by
// the delegate's routes merged into it, as istiod's
// mergeVirtualServicesIfNeeded: a delegate is a VirtualService without
// hosts, visible to the root's namespace; each of its routes keeps its own
// fields and takes the root route's where unset; its matches must fall
// within one of the root route's matches, else it is dropped. Problems are
// reported against the root and drop only the affected route.
func (x *Index) mergeDelegates(cfg *model.Config, spec *networking.VirtualService, cat vsCatalog) *networking.VirtualService {
	if !isRoot(spec) {
		return spec
	}
	out := proto.Clone(spec).(*networking.VirtualService)
	var merged []*networking.HTTPRoute
	for i, hr := range out.GetHttp() {
		d := hr.GetDelegate()
		if d == nil {
			merged = append(merged, hr)
			continue
		}
		field := fmt.Sprintf("spec.http[%d].delegate", i)
		ns := d.GetNamespace()
		if ns == "" {
			ns = cfg.Namespace
		}
		key := ns + "/" + d.GetName()
		fail := func(format string, args ...any) {
			x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field, format+"; this HTTP route is ignored", args...)
		}
		target, ok := cat.all[key]
		if !ok {
			fail("delegate VirtualService %s not found", key)
			continue
		}
		dspec := target.Spec.(*networking.VirtualService)
		switch {
		case len(dspec.GetHosts()) > 0:
			fail("VirtualService %s has hosts, so it cannot be a delegate", key)
			continue
		case cat.bad[key]:
			fail("delegate VirtualService %s is invalid", key)
			continue
		case !exportedTo(x.vsExportTo(dspec.GetExportTo()), ns, cfg.Namespace):
			fail("delegate VirtualService %s is not exported to namespace %s", key, cfg.Namespace)
			continue
		}
		root := proto.Clone(hr).(*networking.HTTPRoute)
		root.Delegate = nil
		for j, sub := range dspec.GetHttp() {
			leaf := proto.Clone(sub).(*networking.HTTPRoute)
			x.resolveRouteHosts(leaf, ns)
			m, ok := mergeHTTPRoute(root, leaf)
			if !ok {
				x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field,
					"the matches of route %d of delegate %s fall outside this route's matches; that delegate route is ignored", j, key)
				continue
			}
			merged = append(merged, m)
		}
	}
	out.Http = merged
	return out
}

// resolveRouteHosts expands short destination hosts of a delegate's route in
// the delegate's own namespace, before it is merged into a root elsewhere.
func (x *Index) resolveRouteHosts(hr *networking.HTTPRoute, ns string) {
	resolve := func(d *networking.Destination) {
		if d != nil {
			d.Host = resolveHost(d.GetHost(), ns, x.domain)
		}
	}
	for _, d := range hr.GetRoute() {
		resolve(d.GetDestination())
	}
	resolve(hr.GetMirror())
	for _, m := range hr.GetMirrors() {
		resolve(m.GetDestination())
	}
}

// mergeHTTPRoute merges a delegate route (leaf, owned by the caller) into
// its root route; false when their matches conflict.
func mergeHTTPRoute(root, leaf *networking.HTTPRoute) (*networking.HTTPRoute, bool) {
	matches, ok := mergeMatches(root.GetMatch(), leaf.GetMatch())
	if !ok {
		return nil, false
	}
	leaf.Match = matches
	leaf.Name = joinName(root.GetName(), leaf.GetName())
	if leaf.Rewrite == nil {
		leaf.Rewrite = root.Rewrite
	}
	if leaf.DirectResponse == nil {
		leaf.DirectResponse = root.DirectResponse
	}
	if leaf.Timeout == nil {
		leaf.Timeout = root.Timeout
	}
	if leaf.Retries == nil {
		leaf.Retries = root.Retries
	}
	if leaf.Fault == nil {
		leaf.Fault = root.Fault
	}
	if leaf.Mirror == nil {
		leaf.Mirror = root.Mirror
	}
	if leaf.MirrorPercentage == nil {
		leaf.MirrorPercentage = root.MirrorPercentage
	}
	if leaf.Mirrors == nil {
		leaf.Mirrors = root.Mirrors
	}
	if leaf.CorsPolicy == nil {
		leaf.CorsPolicy = root.CorsPolicy
	}
	if leaf.Headers == nil {
		leaf.Headers = root.Headers
	}
	return leaf, true
}

// joinName is istiod's naming of merged routes and matches: "root-leaf".
func joinName(root, leaf string) string {
	switch {
	case leaf == "":
		return root
	case root == "":
		return leaf
	}
	return root + "-" + leaf
}

// mergeMatches combines root and delegate match conditions: each delegate
// match must be compatible with at least one root match, and is merged with
// every compatible one.
func mergeMatches(root, leaf []*networking.HTTPMatchRequest) ([]*networking.HTTPMatchRequest, bool) {
	if len(root) == 0 {
		return leaf, true
	}
	if len(leaf) == 0 {
		return root, true
	}
	var out []*networking.HTTPMatchRequest
	for _, l := range leaf {
		found := false
		for _, r := range root {
			if matchConflict(r, l) {
				continue
			}
			out = append(out, mergeMatch(r, l))
			found = true
		}
		if !found {
			return nil, false
		}
	}
	return out, len(out) > 0
}

// mergeMatch fills the delegate match's unset fields from the root's.
func mergeMatch(root, leaf *networking.HTTPMatchRequest) *networking.HTTPMatchRequest {
	out := proto.Clone(leaf).(*networking.HTTPMatchRequest)
	out.Name = joinName(root.GetName(), leaf.GetName())
	if out.Uri == nil {
		out.Uri = root.Uri
	}
	if out.Scheme == nil {
		out.Scheme = root.Scheme
	}
	if out.Method == nil {
		out.Method = root.Method
	}
	if out.Authority == nil {
		out.Authority = root.Authority
	}
	out.Headers = mergeMaps(root.Headers, leaf.Headers)
	out.WithoutHeaders = mergeMaps(root.WithoutHeaders, leaf.WithoutHeaders)
	out.QueryParams = mergeMaps(root.QueryParams, leaf.QueryParams)
	out.SourceLabels = mergeMaps(root.SourceLabels, leaf.SourceLabels)
	if out.Port == 0 {
		out.Port = root.Port
	}
	if out.SourceNamespace == "" {
		out.SourceNamespace = root.SourceNamespace
	}
	if len(out.Gateways) == 0 {
		out.Gateways = root.Gateways
	}
	if out.StatPrefix == "" {
		out.StatPrefix = root.StatPrefix
	}
	return out
}

// mergeMaps returns root's entries overridden by leaf's; nil if both are empty.
func mergeMaps[V any](root, leaf map[string]V) map[string]V {
	if len(root)+len(leaf) == 0 {
		return nil
	}
	out := maps.Clone(root)
	if out == nil {
		out = map[string]V{}
	}
	maps.Copy(out, leaf)
	return out
}

// matchConflict reports whether a delegate match can select requests the
// root match does not, as istiod's hasConflict.
func matchConflict(root, leaf *networking.HTTPMatchRequest) bool {
	roots := []*networking.StringMatch{root.GetUri(), root.GetScheme(), root.GetMethod(), root.GetAuthority()}
	leaves := []*networking.StringMatch{leaf.GetUri(), leaf.GetScheme(), leaf.GetMethod(), leaf.GetAuthority()}
	for i := range roots {
		if stringMatchConflict(roots[i], leaves[i]) {
			return true
		}
	}
	for _, pair := range [][2]map[string]*networking.StringMatch{
		{root.GetHeaders(), leaf.GetHeaders()}, {root.GetWithoutHeaders(), leaf.GetWithoutHeaders()},
		{root.GetQueryParams(), leaf.GetQueryParams()},
	} {
		for k, v := range pair[1] {
			if stringMatchConflict(pair[0][k], v) {
				return true
			}
		}
	}
	if root.GetIgnoreUriCase() != leaf.GetIgnoreUriCase() {
		return true
	}
	if root.GetPort() > 0 && leaf.GetPort() > 0 && root.GetPort() != leaf.GetPort() {
		return true
	}
	if root.GetSourceNamespace() != "" && leaf.GetSourceNamespace() != root.GetSourceNamespace() {
		return true
	}
	for k, v := range leaf.GetSourceLabels() {
		if rv, ok := root.GetSourceLabels()[k]; ok && rv != v {
			return true
		}
	}
	if len(root.GetGateways()) > 0 && len(leaf.GetGateways()) > 0 {
		for _, g := range leaf.GetGateways() {
			if !slices.Contains(root.GetGateways(), g) {
				return true
			}
		}
	}
	return false
}

// stringMatchConflict reports whether leaf can match a value root does not:
// regexes only combine with an unset side; an exact root needs the same
// exact leaf; a prefix root needs a leaf prefix or exact value under it.
func stringMatchConflict(root, leaf *networking.StringMatch) bool {
	if root == nil || leaf == nil {
		return false
	}
	if root.GetRegex() != "" || leaf.GetRegex() != "" {
		return true
	}
	if exact := root.GetExact(); exact != "" {
		return leaf.GetExact() != exact
	}
	if prefix := root.GetPrefix(); prefix != "" {
		switch {
		case leaf.GetPrefix() != "":
			return !strings.HasPrefix(leaf.GetPrefix(), prefix)
		case leaf.GetExact() != "":
			return !strings.HasPrefix(leaf.GetExact(), prefix)
		}
	}
	return true
}
