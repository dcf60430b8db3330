package translate

import (
	"slices"

	"github.com/meshd/meshd/internal/model"
)

// exportDefaults are the MeshConfig's exportTo defaults
// (defaultServiceExportTo, defaultVirtualServiceExportTo,
// defaultDestinationRuleExportTo), applied to objects without exportTo.
// Empty means everywhere ("*"), istiod's default.
type exportDefaults struct {
	service, virtualService, destinationRule []string
}

// orDefault returns exportTo, or def when exportTo is empty.
func orDefault(exportTo, def []string) []string {
	if len(exportTo) == 0 {
		return def
	}
	return exportTo
}

// exportedTo applies Istio exportTo semantics: empty or "*" is everywhere,
// "." the owner's namespace, "~" nowhere, otherwise the listed namespaces.
func exportedTo(exportTo []string, owner, ns string) bool {
	if len(exportTo) == 0 {
		return true
	}
	for _, e := range exportTo {
		switch e {
		case "*":
			return true
		case ".":
			if owner == ns {
				return true
			}
		case ns:
			return true
		}
	}
	return false
}

// serviceExportTo is the effective exportTo of a service (the
// networking.istio.io/exportTo annotation of a Kubernetes Service, or a
// ServiceEntry's spec.exportTo), defaulted by the MeshConfig.
func (x *Index) serviceExportTo(svc *model.Service) []string {
	return orDefault(svc.ExportTo, x.exportDefaults.service)
}

// serviceExported reports whether svc is visible to proxies of namespace ns.
func (x *Index) serviceExported(svc *model.Service, ns string) bool {
	return exportedTo(x.serviceExportTo(svc), svc.Namespace, ns)
}

// vsExportTo is the effective spec.exportTo of a VirtualService.
func (x *Index) vsExportTo(exportTo []string) []string {
	return orDefault(exportTo, x.exportDefaults.virtualService)
}

// vsExported reports whether a VirtualService is visible to namespace ns.
func (x *Index) vsExported(vs *virtualService, ns string) bool {
	return exportedTo(x.vsExportTo(vs.spec.GetExportTo()), vs.cfg.Namespace, ns)
}

// drExported reports whether a DestinationRule is visible to namespace ns.
// As in istiod this holds for its own namespace too: a rule exported only
// to other namespaces does not apply to its own.
func (x *Index) drExported(r *destRule, ns string) bool {
	return exportedTo(orDefault(r.spec.GetExportTo(), x.exportDefaults.destinationRule), r.cfg.Namespace, ns)
}

// exportSet is an exportTo list resolved against its owner's namespace:
// every namespace, or the listed ones ("~" lists none).
type exportSet struct {
	all bool
	ns  []string
}

func resolveExportTo(exportTo []string, owner string) exportSet {
	if len(exportTo) == 0 {
		return exportSet{all: true}
	}
	var s exportSet
	for _, e := range exportTo {
		switch e {
		case "*":
			return exportSet{all: true}
		case "~":
		case ".":
			s.ns = append(s.ns, owner)
		default:
			s.ns = append(s.ns, e)
		}
	}
	return s
}

func (s exportSet) has(ns string) bool { return s.all || slices.Contains(s.ns, ns) }

// overlaps reports whether some namespace is in both sets.
func (s exportSet) overlaps(o exportSet) bool {
	switch {
	case s.all:
		return o.all || len(o.ns) > 0
	case o.all:
		return len(s.ns) > 0
	}
	for _, n := range s.ns {
		if o.has(n) {
			return true
		}
	}
	return false
}
