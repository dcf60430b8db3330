package convert

import (
	networking "istio.io/api/networking/v1"
)

// validateExportTo checks an exportTo list (spec.exportTo, or a Service's
// networking.istio.io/exportTo annotation) of an object of namespace ns, as
// istiod does: each entry is "." (own namespace), "*" (every namespace), a
// namespace name, or, for Services and ServiceEntries only (allowNone), "~"
// (no namespace); "*" and "~" stand alone; no entry is repeated ("." and
// the object's own namespace count as the same).
func validateExportTo(exportTo []string, ns, field string, allowNone bool) *fieldError {
	seen := map[string]bool{}
	for i, e := range exportTo {
		p := at(field, i)
		switch {
		case e == "~" && !allowNone:
			return errf(p, `exportTo "~" (no namespace) is only allowed for Services and ServiceEntries`)
		case (e == "*" || e == "~") && len(exportTo) > 1:
			return errf(p, "exportTo %q must be the only entry (got %q)", e, exportTo)
		case e != "." && e != "*" && e != "~" && (len(e) > 63 || !dns1123Label.MatchString(e)):
			return errf(p, `exportTo entry %q must be ".", "*", "~" or a namespace name`, e)
		}
		key := e
		if e == "." {
			key = ns
		}
		if seen[key] {
			return errf(p, "exportTo entry %q is repeated (\".\" is namespace %s)", e, ns)
		}
		seen[key] = true
	}
	return nil
}

// specExportTo returns the spec.exportTo of the kinds that have one.
func specExportTo(spec any) ([]string, bool) {
	switch s := spec.(type) {
	case *networking.VirtualService:
		return s.GetExportTo(), false
	case *networking.DestinationRule:
		return s.GetExportTo(), false
	case *networking.ServiceEntry:
		return s.GetExportTo(), true
	}
	return nil, false
}

// checkSpecExportTo validates spec.exportTo of a config object of namespace
// ns, if its kind has one.
func checkSpecExportTo(spec any, ns string) *fieldError {
	exportTo, allowNone := specExportTo(spec)
	if len(exportTo) == 0 {
		return nil
	}
	return validateExportTo(exportTo, ns, "spec.exportTo", allowNone)
}
