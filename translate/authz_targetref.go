package translate

import (
	"fmt"

	typev1beta1 "istio.io/api/type/v1beta1"

	"github.com/meshd/meshd/internal/model"
)

// targetRefs of AuthorizationPolicy and RequestAuthentication. istiod
// attaches a policy naming targetRefs to waypoints (kind Service,
// ServiceEntry) and Gateway API gateways (kind Gateway), never to a
// sidecar. meshd runs no waypoint and no Gateway API gateway: it applies a
// policy targeting a Service (group "" or "core") or a ServiceEntry (group
// networking.istio.io) of its own namespace to the sidecars and gateways
// of the workloads that Service selects — what a waypoint in front of it
// would enforce. Other kinds, a target in another namespace, a Service
// that is not in the registry or selects no workload apply to nothing and
// are reported on the policy (policy-wide, so they cannot fail closed for
// "its workloads": there are none).

// targetRefsOf returns a policy's targetRefs (targetRef included).
func targetRefsOf(spec workloadPolicy) []*typev1beta1.PolicyTargetReference {
	refs := spec.GetTargetRefs()
	if r := spec.GetTargetRef(); r != nil {
		refs = append([]*typev1beta1.PolicyTargetReference{r}, refs...)
	}
	return refs
}

// targetKind is the model kind of services a reference may name ("" for
// kinds meshd does not attach policies to).
func targetKind(ref *typev1beta1.PolicyTargetReference) model.Kind {
	switch {
	case ref.GetKind() == "Service" && (ref.GetGroup() == "" || ref.GetGroup() == "core"):
		return model.KindService
	case ref.GetKind() == "ServiceEntry" && ref.GetGroup() == "networking.istio.io":
		return model.KindServiceEntry
	}
	return ""
}

// targetServices returns the services of cfg's namespace that ref names.
func (ax *policyIndex) targetServices(cfg *model.Config, ref *typev1beta1.PolicyTargetReference) []*model.Service {
	kind := targetKind(ref)
	if kind == "" || (ref.GetNamespace() != "" && ref.GetNamespace() != cfg.Namespace) {
		return nil
	}
	var out []*model.Service
	for _, svc := range ax.services {
		name := svc.Name
		if svc.Origin == model.KindServiceEntry {
			name = svc.EntryName
		}
		if svc.Namespace == cfg.Namespace && name == ref.GetName() && svc.Origin == kind && len(svc.Selector) > 0 {
			out = append(out, svc)
		}
	}
	return out
}

// targets reports whether a workload of namespace ns with labels backs a
// service one of refs names.
func (ax *policyIndex) targets(cfg *model.Config, refs []*typev1beta1.PolicyTargetReference, ns string, labels map[string]string) bool {
	if ns != cfg.Namespace {
		return false
	}
	for _, ref := range refs {
		for _, svc := range ax.targetServices(cfg, ref) {
			if labelsMatch(svc.Selector, labels) {
				return true
			}
		}
	}
	return false
}

// targetRefErrors reports the references of cfg that attach it to no
// workload.
func (ax *policyIndex) targetRefErrors(cfg *model.Config) []model.ObjectError {
	var out []model.ObjectError
	for i, ref := range targetRefsOf(cfg.Spec.(workloadPolicy)) {
		field := fmt.Sprintf("spec.targetRefs[%d]", i)
		var why string
		switch {
		case targetKind(ref) == "":
			why = fmt.Sprintf("kind %q of group %q is not supported (meshd attaches policies to the workloads of a Service "+
				"or ServiceEntry; it runs no waypoint or Gateway API gateway)", ref.GetKind(), ref.GetGroup())
		case ref.GetNamespace() != "" && ref.GetNamespace() != cfg.Namespace:
			why = fmt.Sprintf("namespace %q is not the policy's: a policy targets objects of its own namespace", ref.GetNamespace())
		case len(ax.targetServices(cfg, ref)) == 0:
			why = fmt.Sprintf("%s %s/%s is not in the registry or selects no workload", ref.GetKind(), cfg.Namespace, ref.GetName())
		default:
			continue
		}
		out = append(out, model.ObjectError{Kind: cfg.Kind, Namespace: cfg.Namespace, Name: cfg.Name, Source: cfg.Source,
			Field: field, Message: why + ": this reference applies the policy to no workload"})
	}
	return out
}
