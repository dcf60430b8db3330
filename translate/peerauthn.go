package translate

import (
	"fmt"
	"maps"
	"slices"

	security "istio.io/api/security/v1beta1"

	"github.com/meshd/meshd/internal/model"
)

// PeerAuthentication (security.istio.io): the inbound mTLS mode of each
// workload port, as istiod resolves it (pilot/pkg/model/authentication.go:
// AuthenticationPolicies.addPeerAuthentication, getConfigsForWorkload;
// pilot/pkg/security/authn/policy_applier.go: ComposePeerAuthentication,
// GetMutualTLSModeForPort):
//   - the mesh-wide policy is the oldest policy without selector labels in
//     the root namespace (MeshConfig rootNamespace, default istio-system);
//     a namespace-wide policy is the oldest one without selector labels in
//     a namespace; a workload policy has selector labels, all of which the
//     workload has, and is in the workload's namespace (the oldest wins;
//     workload policies of the root namespace apply to nothing);
//   - "oldest" is creationTimestamp, then name;
//   - the narrowest defined mode wins: workload > namespace > mesh; UNSET
//     (or no mtls) inherits from the wider level; with nothing set the mode
//     is PERMISSIVE;
//   - the workload policy's portLevelMtls overrides the mode per workload
//     (target) port; an UNSET port inherits the workload's mode.
//
// Younger namespace-wide policies and workload policies of the root
// namespace are reported, since istiod ignores them (it only logs the
// former). The modes' effect on the inbound listener is
// peerauthn_inbound.go's.

// mtlsMode is an effective mutual TLS mode: DISABLE, PERMISSIVE or STRICT,
// never UNSET.
type mtlsMode = security.PeerAuthentication_MutualTLS_Mode

// The effective modes.
const (
	mtlsDisable    = security.PeerAuthentication_MutualTLS_DISABLE
	mtlsPermissive = security.PeerAuthentication_MutualTLS_PERMISSIVE
	mtlsStrict     = security.PeerAuthentication_MutualTLS_STRICT
)

// peerAuthnIndex holds the PeerAuthentications that can apply, by level.
type peerAuthnIndex struct {
	root string
	// mesh is the mesh-wide policy, nil if none.
	mesh *model.Config
	// namespace holds each other namespace's namespace-wide policy.
	namespace map[string]*model.Config
	// workload holds the policies with selector labels of each namespace
	// but the root, oldest first.
	workload map[string][]*model.Config
}

// peerAuthnKey names the Index's peerAuthnIndex among its shared values.
type peerAuthnKey struct{}

// peerAuthn returns the Index's PeerAuthentications by level.
func (x *Index) peerAuthn() *peerAuthnIndex {
	return x.shared.get(peerAuthnKey{}, func() any {
		pa, _ := newPeerAuthnIndex(x.snap.Configs(model.KindPeerAuthentication), x.rootNamespace)
		return pa
	}).(*peerAuthnIndex)
}

// indexPeerAuthentications indexes the PeerAuthentications and reports
// the ones istiod ignores.
func (x *Index) indexPeerAuthentications() {
	pa, ignored := newPeerAuthnIndex(x.snap.Configs(model.KindPeerAuthentication), x.rootNamespace)
	x.shared.get(peerAuthnKey{}, func() any { return pa })
	x.errors = append(x.errors, ignored...)
}

// newPeerAuthnIndex sorts configs (oldest first, as the Snapshot lists
// them) into levels, and returns the errors for those that never apply.
func newPeerAuthnIndex(configs []*model.Config, root string) (*peerAuthnIndex, []model.ObjectError) {
	pa := &peerAuthnIndex{root: root, namespace: map[string]*model.Config{}, workload: map[string][]*model.Config{}}
	var ignored []model.ObjectError
	for _, cfg := range configs {
		spec := cfg.Spec.(*security.PeerAuthentication)
		switch {
		case len(spec.GetSelector().GetMatchLabels()) > 0 && cfg.Namespace == root:
			ignored = append(ignored, peerAuthnError(cfg, "spec.selector",
				"a PeerAuthentication with a selector in the root namespace %q applies to no workload "+
					"(istiod ignores it); remove the selector to make it mesh-wide", root))
		case len(spec.GetSelector().GetMatchLabels()) > 0:
			pa.workload[cfg.Namespace] = append(pa.workload[cfg.Namespace], cfg)
		default:
			if older := pa.wide(cfg.Namespace); older != nil {
				ignored = append(ignored, peerAuthnError(cfg, "spec.selector",
					"%s already has the %s PeerAuthentication %s (older); this one is ignored, as istiod ignores it",
					namespaceLabel(cfg.Namespace, root), pa.level(cfg.Namespace), older.Name))
				continue
			}
			pa.setWide(cfg)
		}
	}
	return pa, ignored
}

// peerAuthnError is an ObjectError on a PeerAuthentication.
func peerAuthnError(cfg *model.Config, field, format string, args ...any) model.ObjectError {
	return model.ObjectError{Kind: model.KindPeerAuthentication, Namespace: cfg.Namespace, Name: cfg.Name,
		Source: cfg.Source, Field: field, Message: fmt.Sprintf(format, args...)}
}

// namespaceLabel names ns for a message ("the root namespace istio-system").
func namespaceLabel(ns, root string) string {
	if ns == root {
		return "the root namespace " + ns
	}
	return "namespace " + ns
}

// wide returns the policy without selector of namespace ns, nil if none.
func (pa *peerAuthnIndex) wide(ns string) *model.Config {
	if ns == pa.root {
		return pa.mesh
	}
	return pa.namespace[ns]
}

// setWide records cfg as its namespace's policy without selector.
func (pa *peerAuthnIndex) setWide(cfg *model.Config) {
	if cfg.Namespace == pa.root {
		pa.mesh = cfg
	} else {
		pa.namespace[cfg.Namespace] = cfg
	}
}

// level is "mesh-wide" for the root namespace, else "namespace-wide".
func (pa *peerAuthnIndex) level(ns string) string {
	if ns == pa.root {
		return "mesh-wide"
	}
	return "namespace-wide"
}

// peerPolicy is the PeerAuthentication in force for one workload,
// istiod's MergedPeerAuthentication with the policies it came from.
type peerPolicy struct {
	// mode is the workload's mode, for every port without its own.
	mode mtlsMode
	// perPort holds the workload policy's portLevelMtls, UNSET resolved.
	perPort map[uint32]mtlsMode
	// mesh, namespace and workload are the policies that applied at each
	// level (nil: none).
	mesh, namespace, workload *model.Config
}

// policyFor composes the policy of a workload of namespace ns with labels
// (nil: none), as istiod's ComposePeerAuthentication.
func (pa *peerAuthnIndex) policyFor(ns string, labels map[string]string) peerPolicy {
	p := peerPolicy{mode: mtlsPermissive, mesh: pa.mesh}
	if ns != pa.root {
		p.namespace = pa.namespace[ns]
	}
	for _, cfg := range pa.workload[ns] {
		if labels != nil && labelsMatch(cfg.Spec.(*security.PeerAuthentication).GetSelector().GetMatchLabels(), labels) {
			p.workload = cfg
			break
		}
	}
	for _, cfg := range []*model.Config{p.mesh, p.namespace, p.workload} {
		if m := specMode(cfg); m != security.PeerAuthentication_MutualTLS_UNSET {
			p.mode = m
		}
	}
	if p.workload == nil {
		return p
	}
	for port, mtls := range p.workload.Spec.(*security.PeerAuthentication).GetPortLevelMtls() {
		if p.perPort == nil {
			p.perPort = map[uint32]mtlsMode{}
		}
		p.perPort[port] = p.mode
		if m := mtls.GetMode(); m != security.PeerAuthentication_MutualTLS_UNSET {
			p.perPort[port] = m
		}
	}
	return p
}

// specMode is the mtls.mode of a policy, UNSET when cfg is nil.
func specMode(cfg *model.Config) mtlsMode {
	if cfg == nil {
		return security.PeerAuthentication_MutualTLS_UNSET
	}
	return cfg.Spec.(*security.PeerAuthentication).GetMtls().GetMode()
}

// portMode is the mode of a workload (target) port, istiod's
// GetMutualTLSModeForPort; port 0 is the workload's mode.
func (p peerPolicy) portMode(port uint32) mtlsMode {
	if m, ok := p.perPort[port]; ok {
		return m
	}
	return p.mode
}

// levelPorts returns the ports of portLevelMtls, sorted.
func (p peerPolicy) levelPorts() []uint32 { return slices.Sorted(maps.Keys(p.perPort)) }

// workloadPeerPolicy returns the PeerAuthentication in force for the scope's
// workload.
func (b *builder) workloadPeerPolicy() peerPolicy {
	return b.x.peerAuthn().policyFor(b.scope.Namespace, b.scope.LabelMap())
}
