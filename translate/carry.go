package translate

import (
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/internal/model"
)

// Carrying values from one Index to the next. A canary (a VirtualService
// changes) rebuilds every view, yet most of what the views hold is the
// same as in the previous push: the default-route virtual host of every
// service without a VirtualService, and the cluster of every service
// without a DestinationRule. Those values are kept from Index to Index —
// with their validation here, and their encoding in xds (EachCarried) —
// so a push translates, validates and marshals only what changed.
//
// A value is carried only when its key holds everything it is built from:
//   - a default-route virtual host is a function of its vhostKey alone (the
//     service, an immutable model object, port, domains and flags), so it
//     is always carried while the service is;
//   - so is a cluster without DestinationRule that is resolved by EDS (or
//     original destination) and not of a subset (endpointFree);
//   - another cluster without DestinationRule depends on the endpoints and
//     the mesh (assignments of DNS clusters, subsets' EDS names): it is
//     carried only when the previous Index's Snapshot has the very same
//     objects but for VirtualServices, Gateways and Sidecars.
//
// Carried values survive ReleaseMemos (they are what the next push reuses).

// carriable reports whether a shared value's key makes it a carried one
// (for clusters: carryClusters is whether clusters may be carried).
func carriable(key any, carryClusters bool) bool {
	switch k := key.(type) {
	case vhostKey:
		return k.vs == nil
	case clusterKey:
		return k.rule == nil && (carryClusters || endpointFree(k))
	}
	return false
}

// endpointFree reports whether a cluster without DestinationRule is a
// function of its key alone: an EDS or original-destination cluster of
// the service's own port (no subset) embeds no endpoints and names no
// identities.
func endpointFree(k clusterKey) bool {
	_, subset, _, ok := ParseClusterName(k.name)
	return ok && subset == "" &&
		(k.svc.Resolution == model.ResolutionEDS || k.svc.Resolution == model.ResolutionPassthrough)
}

// carryFrom takes over prev's carried values whose services x still has.
func (x *Index) carryFrom(prev *Index) {
	clusters := prev.snap.SameObjects(x.snap, model.KindVirtualService, model.KindGateway, model.KindSidecar)
	live := make(map[*model.Service]bool, len(x.services))
	for _, svc := range x.services {
		live[svc] = true
	}
	prev.shared.m.Range(func(key, v any) bool {
		var svc *model.Service
		switch k := key.(type) {
		case vhostKey:
			svc = k.svc
		case clusterKey:
			svc = k.svc
		}
		if svc == nil || !carriable(key, clusters) || !live[svc] {
			return true
		}
		x.shared.m.Store(key, v)
		if c, ok := prev.checked.errs.Load(v); ok {
			x.checked.errs.Store(v, c)
		}
		return true
	})
}

// keepCarried is ReleaseMemos' part for carried values: it returns a
// function that stores them (and their validation) back after the memos
// were cleared.
func (x *Index) keepCarried() func() {
	type kept struct{ key, v, checked any }
	var keep []kept
	x.shared.m.Range(func(key, v any) bool {
		if carriable(key, true) {
			c, _ := x.checked.errs.Load(v)
			keep = append(keep, kept{key, v, c})
		}
		return true
	})
	return func() {
		for _, k := range keep {
			x.shared.m.Store(k.key, k.v)
			if k.checked != nil {
				x.checked.errs.Store(k.v, k.checked)
			}
		}
	}
}

// EachCarried calls fn with every value the Index carries to the next
// one, so that their encodings can be kept as well.
func (x *Index) EachCarried(fn func(proto.Message)) {
	x.shared.m.Range(func(key, v any) bool {
		if carriable(key, true) {
			if m, ok := v.(proto.Message); ok && !isNilCluster(m) {
				fn(m)
			}
		}
		return true
	})
}

// isNilCluster reports a typed nil cluster (outboundCluster's "none").
func isNilCluster(m proto.Message) bool {
	c, ok := m.(*cluster.Cluster)
	return ok && c == nil
}
