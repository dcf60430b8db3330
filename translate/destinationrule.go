package translate

import (
	"fmt"
	"strings"

	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// destRule is a DestinationRule accepted for one host in its namespace.
type destRule struct {
	cfg  *model.Config
	spec *networking.DestinationRule
	// host is spec.host resolved to a FQDN (or a wildcard).
	host     string
	wildcard bool
}

// subset returns the rule's subset of that name.
func (r *destRule) subset(name string) (*networking.Subset, bool) {
	for _, s := range r.spec.GetSubsets() {
		if s.GetName() == name {
			return s, true
		}
	}
	return nil, false
}

// indexDestinationRules accepts at most one DestinationRule per host and
// namespace (the oldest; younger ones are reported), as istiod resolves
// conflicts, and rejects rules whose traffic policy would produce a cluster
// Envoy refuses. Rules of different namespaces for one host coexist: each
// calling namespace sees its own (see destinationRule).
func (x *Index) indexDestinationRules() {
	owner := map[string]*destRule{}
	for _, cfg := range x.snap.Configs(model.KindDestinationRule) {
		spec := cfg.Spec.(*networking.DestinationRule)
		r := &destRule{cfg: cfg, spec: spec, host: resolveHost(spec.GetHost(), cfg.Namespace, x.domain)}
		r.wildcard = strings.Contains(r.host, "*")
		key := cfg.Namespace + "/" + r.host
		if prev, ok := owner[key]; ok {
			x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, "spec.host",
				"host %q already has DestinationRule %s (older) in this namespace; this one is ignored",
				r.host, prev.cfg.Key())
			continue
		}
		if field, err := checkTrafficPolicies(spec); err != nil {
			x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field, "%v; the DestinationRule is not applied", err)
			continue
		}
		if !x.hostKnown(r.host) {
			x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, "spec.host",
				"host %q matches no service in the registry", r.host)
		}
		owner[key] = r
		x.drs[cfg.Namespace] = append(x.drs[cfg.Namespace], r)
		x.drAll = append(x.drAll, r)
	}
}

// hostKnown reports whether a host (possibly a wildcard) matches a service.
func (x *Index) hostKnown(host string) bool {
	if _, ok := x.byHost[host]; ok {
		return true
	}
	if !strings.Contains(host, "*") {
		return false
	}
	for _, svc := range x.services {
		if model.HostMatches(host, svc.Hostname) {
			return true
		}
	}
	return false
}

// DestinationRuleSource says where the DestinationRule applying to a proxy's
// traffic for a host was found.
type DestinationRuleSource string

// DestinationRule sources, in istiod's order of lookup.
const (
	DestinationRuleProxyNamespace   DestinationRuleSource = "proxy namespace"
	DestinationRuleServiceNamespace DestinationRuleSource = "service namespace"
	DestinationRuleRootNamespace    DestinationRuleSource = "root namespace"
)

// destinationRule returns the DestinationRule a proxy of namespace proxyNS
// applies to traffic for svc (see lookupDestinationRule). nil when none.
func (x *Index) destinationRule(proxyNS string, svc *model.Service) *destRule {
	r, _ := x.lookupDestinationRule(proxyNS, svc)
	return r
}

// lookupDestinationRule finds the rule as istiod looks it up: a rule of the
// proxy's own namespace, else one exported to it from the service's
// namespace, else one exported to it from the root namespace. Within a
// namespace an exact host beats the most specific wildcard.
func (x *Index) lookupDestinationRule(proxyNS string, svc *model.Service) (*destRule, DestinationRuleSource) {
	if r := x.ruleIn(proxyNS, svc.Hostname, proxyNS); r != nil {
		return r, DestinationRuleProxyNamespace
	}
	if svc.Namespace != proxyNS {
		if r := x.ruleIn(svc.Namespace, svc.Hostname, proxyNS); r != nil {
			return r, DestinationRuleServiceNamespace
		}
	}
	if root := x.rootNamespace; root != proxyNS && root != svc.Namespace {
		if r := x.ruleIn(root, svc.Hostname, proxyNS); r != nil {
			return r, DestinationRuleRootNamespace
		}
	}
	return nil, ""
}

// ruleIn returns the rule of namespace ns for host that proxies of namespace
// proxyNS may use: exported to proxyNS (the MeshConfig's
// defaultDestinationRuleExportTo when it has no exportTo). As in istiod,
// this holds for the rule's own namespace too: a rule exported only to
// other namespaces does not apply in its own.
func (x *Index) ruleIn(ns, host, proxyNS string) *destRule {
	var best *destRule
	for _, r := range x.drs[ns] {
		if !x.drExported(r, proxyNS) {
			continue
		}
		if r.host == host {
			return r
		}
		if r.wildcard && model.HostMatches(r.host, host) && (best == nil || len(r.host) > len(best.host)) {
			best = r
		}
	}
	return best
}

// subset reports whether some accepted DestinationRule for host defines the
// named subset, and returns the oldest such definition.
func (x *Index) subset(host, name string) (*networking.Subset, bool) {
	for _, r := range x.rulesFor(host) {
		if s, ok := r.subset(name); ok {
			return s, true
		}
	}
	return nil, false
}

// rulesFor returns every accepted rule, of any namespace, whose host matches
// host, oldest first.
func (x *Index) rulesFor(host string) []*destRule {
	var out []*destRule
	for _, r := range x.drAll {
		if r.host == host || (r.wildcard && model.HostMatches(r.host, host)) {
			out = append(out, r)
		}
	}
	return out
}

// checkTrafficPolicies builds a throwaway cluster for every traffic policy
// of the rule (top level, per port, per subset) and validates it, so that a
// rule Envoy would reject is rejected here, alone, with the field named.
func checkTrafficPolicies(dr *networking.DestinationRule) (string, error) {
	check := func(field string, tp *networking.TrafficPolicy) (string, error) {
		ports := []uint32{0}
		for _, pl := range tp.GetPortLevelSettings() {
			ports = append(ports, pl.GetPort().GetNumber())
		}
		for _, port := range ports {
			p := model.Port{Port: port, Protocol: model.ProtocolHTTP}
			c := probeCluster()
			applyTrafficPolicy(c, mergeTrafficPolicy(nil, tp, port), policyTarget{port: p, host: "probe.invalid"}, false)
			if err := validateCluster(c); err != nil {
				if port != 0 {
					field = fmt.Sprintf("%s.portLevelSettings[port=%d]", field, port)
				}
				return field, err
			}
		}
		return "", nil
	}
	if f, err := check("spec.trafficPolicy", dr.GetTrafficPolicy()); err != nil {
		return f, err
	}
	for i, s := range dr.GetSubsets() {
		if f, err := check(fmt.Sprintf("spec.subsets[%d].trafficPolicy", i), s.GetTrafficPolicy()); err != nil {
			return f, err
		}
	}
	return "", nil
}
