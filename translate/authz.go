package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/meshd/meshd/internal/model"
)

// AuthorizationPolicy (security.istio.io): which policies apply to a
// sidecar's workload, as istiod selects them (pilot/pkg/model/
// authorization.go: AuthorizationPolicies.ListAuthorizationPolicies):
//   - a policy of the root namespace (MeshConfig rootNamespace) applies to
//     every workload of the mesh its selector matches (no selector: all);
//   - a policy of another namespace applies to the workloads of that
//     namespace its selector matches (no selector: all of them);
//   - a policy with targetRef(s) applies to the workloads of the Service or
//     ServiceEntry it names (authz_targetref.go: istiod attaches such
//     policies to waypoints, which meshd does not run).
//
// The policies become Envoy RBAC on the inbound chains (authz_rbac.go,
// authz_inbound.go). What meshd cannot translate faithfully fails closed
// and is reported on the object (unsupportedAuthz).

// policyIndex holds every policy of one security kind (AuthorizationPolicy,
// RequestAuthentication) by namespace, oldest first, with a content hash
// of each (for outputKeys).
type policyIndex struct {
	root   string
	byNS   map[string][]*model.Config
	hashes map[*model.Config]string
	// services resolve targetRefs (authz_targetref.go).
	services []*model.Service
}

// authzIndexKey and requestAuthnIndexKey name the Index's policyIndexes
// among its shared values.
type (
	authzIndexKey        struct{}
	requestAuthnIndexKey struct{}
)

// authz returns the Index's AuthorizationPolicies.
func (x *Index) authz() *policyIndex {
	return x.shared.get(authzIndexKey{}, func() any {
		return newPolicyIndex(x.snap.Configs(model.KindAuthorizationPolicy), x.rootNamespace, x.services)
	}).(*policyIndex)
}

// requestAuthn returns the Index's RequestAuthentications.
func (x *Index) requestAuthn() *policyIndex {
	return x.shared.get(requestAuthnIndexKey{}, func() any {
		return newPolicyIndex(x.snap.Configs(model.KindRequestAuthentication), x.rootNamespace, x.services)
	}).(*policyIndex)
}

// indexAuthorizationPolicies indexes the AuthorizationPolicies and
// reports what meshd translates by failing closed.
func (x *Index) indexAuthorizationPolicies() {
	ax := x.authz()
	for _, cfgs := range sortedNamespaces(ax.byNS) {
		for _, cfg := range cfgs {
			x.errors = append(x.errors, x.unsupportedAuthz(cfg)...)
			x.errors = append(x.errors, ax.targetRefErrors(cfg)...)
		}
	}
}

// sortedNamespaces lists m's values by namespace.
func sortedNamespaces(m map[string][]*model.Config) [][]*model.Config {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([][]*model.Config, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

// newPolicyIndex groups configs (oldest first, as the Snapshot lists them).
func newPolicyIndex(configs []*model.Config, root string, services []*model.Service) *policyIndex {
	ax := &policyIndex{root: root, byNS: map[string][]*model.Config{}, hashes: map[*model.Config]string{}, services: services}
	for _, cfg := range configs {
		ax.byNS[cfg.Namespace] = append(ax.byNS[cfg.Namespace], cfg)
		b, _ := deterministic.Marshal(cfg.Spec)
		sum := sha256.Sum256(b)
		ax.hashes[cfg] = hex.EncodeToString(sum[:8])
	}
	return ax
}

// workloadPolicy is what selects a security policy's workloads: its
// selector's labels, and whether it names targetRefs instead.
type workloadPolicy interface {
	GetSelector() *typev1beta1.WorkloadSelector
	GetTargetRef() *typev1beta1.PolicyTargetReference
	GetTargetRefs() []*typev1beta1.PolicyTargetReference
}

// policiesFor returns the policies that apply to a workload (sidecar or
// gateway) of namespace ns with labels: the root namespace's, then ns's;
// a policy with targetRefs applies to the workloads of the Services it
// names instead (authz_targetref.go).
func (ax *policyIndex) policiesFor(ns string, labels map[string]string) []*model.Config {
	var out []*model.Config
	add := func(cfgs []*model.Config) {
		for _, cfg := range cfgs {
			spec := cfg.Spec.(workloadPolicy)
			if refs := targetRefsOf(spec); len(refs) > 0 {
				if ax.targets(cfg, refs, ns, labels) {
					out = append(out, cfg)
				}
				continue
			}
			if sel := spec.GetSelector().GetMatchLabels(); len(sel) > 0 && !labelsMatch(sel, labels) {
				continue
			}
			out = append(out, cfg)
		}
	}
	add(ax.byNS[ax.root])
	if ns != ax.root {
		add(ax.byNS[ns])
	}
	return out
}

// key names a set of policies for an outputKey: each one's name and
// content hash.
func (ax *policyIndex) key(policies []*model.Config) string {
	var k strings.Builder
	for _, cfg := range policies {
		fmt.Fprintf(&k, "%s@%s,", cfg.Key(), ax.hashes[cfg])
	}
	return k.String()
}

// workloadAuthz returns the policies that apply to the scope's workload.
func (b *builder) workloadAuthz() []*model.Config {
	return b.x.authz().policiesFor(b.scope.Namespace, b.scope.LabelMap())
}

// authzError is an ObjectError on an AuthorizationPolicy.
func authzError(cfg *model.Config, field, format string, args ...any) model.ObjectError {
	return model.ObjectError{Kind: model.KindAuthorizationPolicy, Namespace: cfg.Namespace, Name: cfg.Name,
		Source: cfg.Source, Field: field, Message: fmt.Sprintf(format, args...)}
}

// unsupportedAuthz reports what meshd does not translate in a policy, and
// how it fails closed instead.
func (x *Index) unsupportedAuthz(cfg *model.Config) []model.ObjectError {
	spec := cfg.Spec.(*security.AuthorizationPolicy)
	var errs []model.ObjectError
	dry, valid := dryRun(cfg)
	switch {
	case !valid:
		errs = append(errs, authzError(cfg, "metadata.annotations["+annoDryRun+"]",
			"%q is not a boolean: the policy is enforced, as istiod does", cfg.Annotations[annoDryRun]))
	case dry && (spec.GetAction() == security.AuthorizationPolicy_CUSTOM || spec.GetAction() == security.AuthorizationPolicy_AUDIT):
		errs = append(errs, authzError(cfg, "metadata.annotations["+annoDryRun+"]",
			"dry run of a %s policy is not supported: the policy is enforced", spec.GetAction()))
	}
	if spec.GetAction() == security.AuthorizationPolicy_CUSTOM {
		if why := customProviderError(x.extAuthzProviders(), spec.GetProvider().GetName()); why != "" {
			errs = append(errs, authzError(cfg, "spec.provider.name",
				"%s: the requests its rules match are denied (fail closed)", why))
		}
	}
	for i, r := range spec.GetRules() {
		if field, why := unsupportedRuleField(r); field != "" {
			effect := "the rule is skipped (it allows nothing; fail closed)"
			switch spec.GetAction() {
			case security.AuthorizationPolicy_DENY:
				effect = "the rule denies every request to its workloads (fail closed)"
			case security.AuthorizationPolicy_AUDIT:
				effect = "the rule is skipped (it logs nothing)"
			}
			errs = append(errs, authzError(cfg, fmt.Sprintf("spec.rules[%d].%s", i, field),
				"%s is not supported yet: %s", why, effect))
		}
	}
	return errs
}
