package translate

import (
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// svcEndpoints is what one service's endpoints contributed to an Index.
type svcEndpoints struct {
	svc   *model.Service
	eps   []model.Endpoint
	shape []byte // its part of EndpointShape
}

// sameEndpoints reports whether a and b are the very same endpoints (the
// model hands out one slice per service until its endpoints change).
func sameEndpoints(a, b []model.Endpoint) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// reuseEndpoints is buildEndpoints for an Index whose config equals prev's
// (only endpoints and pods changed): a service whose endpoints are the
// same keeps prev's assignments and shape part; the others are computed
// again, under the EDS names prev chose (they depend on config only).
func (x *Index) reuseEndpoints(prev *Index) {
	x.subsetEDS = prev.subsetEDS
	x.svcEndpoints = make(map[string]*svcEndpoints, len(x.services))
	for _, svc := range x.services {
		key := svc.Hostname + "/" + svc.Namespace
		eps := x.snap.Endpoints(svc.Hostname, svc.Namespace)
		if p := prev.svcEndpoints[key]; p != nil && p.svc == svc && sameEndpoints(p.eps, eps) {
			x.svcEndpoints[key] = p
			x.eachAssignment(svc, func(name string, _ model.Port, _ *networking.Subset) {
				if c, ok := prev.clas[name]; ok {
					x.clas[name] = c
				}
			})
			continue
		}
		x.eachAssignment(svc, func(name string, p model.Port, s *networking.Subset) {
			x.clas[name] = loadAssignment(name, eps, p, s)
		})
		x.svcEndpoints[key] = &svcEndpoints{svc: svc, eps: eps, shape: x.shapePart(svc, eps)}
	}
}

// eachAssignment calls fn with the EDS name, port and subset (nil for the
// port's own cluster) of every assignment of svc, as buildEndpoints named
// them.
func (x *Index) eachAssignment(svc *model.Service, fn func(name string, p model.Port, s *networking.Subset)) {
	if svc.Resolution == model.ResolutionPassthrough {
		return
	}
	rules := x.rulesFor(svc.Hostname)
	for _, p := range svc.Ports {
		fn(ClusterName(p.Port, "", svc.Hostname), p, nil)
		for _, r := range rules {
			for _, s := range r.spec.GetSubsets() {
				if eds, ok := x.subsetEDS[subsetKey(ClusterName(p.Port, s.GetName(), svc.Hostname), s.GetLabels())]; ok {
					fn(eds, p, s)
				}
			}
		}
	}
}
