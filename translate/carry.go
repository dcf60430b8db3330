package translate

import (
	"slices"
	"sync"
	"sync/atomic"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/meshd/meshd/internal/model"
)

// Carrying values from one Index to the next. A canary (a VirtualService
// changes) rebuilds every view, yet most of what the views hold is the
// same as in the previous push: the default-route virtual host of every
// service without a VirtualService, and the cluster of every service
// without a DestinationRule. Those values live in a store that successive
// Indexes share, with their validation and, attached by xds, their
// encoding (Attachment), so a push translates, validates and marshals
// only what changed; handing the store on costs nothing per push.
//
// A value is carried only when its key holds everything it is built from:
//   - a default-route virtual host is a function of its vhostKey alone (the
//     service, an immutable model object, port, domains and flags);
//   - so is a cluster without DestinationRule that is resolved by EDS (or
//     original destination) and not of a subset (endpointFree);
//     these live in the pure store, kept while the services are;
//   - another cluster of a service's port without DestinationRule depends
//     on the endpoints and the mesh (assignments of DNS clusters): it lives
//     in the routing store, handed on only while the Snapshots differ in
//     VirtualServices, Gateways and Sidecars alone. Subset clusters are not
//     carried.

// carry is an Index's view of the stores. Each store maps a key to its
// entry, and the entry's value to the same entry (for validation and
// attachments, which know the value only).
type carry struct {
	pure, routing *sync.Map
}

// carried is a carried value with what was derived from it.
type carried struct {
	v       any
	checked atomic.Pointer[checked]
	attach  atomic.Value
}

// newCarry returns the stores for x, handed on from prev where they are
// still valid.
func newCarry(prev, x *Index) carry {
	if prev == nil || prev.carry.pure == nil || prev.domain != x.domain || prev.filterGatewayClusters != x.filterGatewayClusters {
		return carry{pure: &sync.Map{}, routing: &sync.Map{}}
	}
	c := prev.carry
	sameServices := slices.Equal(prev.services, x.services)
	if !sameServices {
		c.pure = keepLive(c.pure, x.services)
	}
	if !sameServices || !prev.snap.SameObjects(x.snap, model.KindVirtualService, model.KindGateway, model.KindSidecar,
		model.KindPeerAuthentication, model.KindAuthorizationPolicy, model.KindRequestAuthentication, model.KindJWKS) {
		c.routing = &sync.Map{}
	}
	return c
}

// keepLive is a new store with the entries of m whose service is one of
// services (a service that changed is a new object).
func keepLive(m *sync.Map, services []*model.Service) *sync.Map {
	live := make(map[*model.Service]bool, len(services))
	for _, svc := range services {
		live[svc] = true
	}
	next := &sync.Map{}
	m.Range(func(key, e any) bool {
		if svc := keyService(key); svc != nil && live[svc] {
			next.Store(key, e)
			if v := e.(*carried).v; !isNil(v) {
				next.Store(v, e)
			}
		}
		return true
	})
	return next
}

// store returns the store a shared value's key belongs in, nil when the
// value is not carried.
func (c carry) store(key any) *sync.Map {
	switch k := key.(type) {
	case vhostKey:
		if k.vs == nil {
			return c.pure
		}
	case clusterKey:
		if k.autoMTLS {
			return nil // names the identities of its endpoints (automtls.go)
		}
		// A subset cluster without DestinationRule (a route naming a subset
		// the scope's rule lacks) is rare and would pile up across edits:
		// not carried.
		if _, subset, _, ok := ParseClusterName(k.name); k.rule == nil && ok && subset == "" {
			if endpointFree(k) {
				return c.pure
			}
			return c.routing
		}
	}
	return nil
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

// get returns the carried value for key, building it on first use.
func (c carry) get(m *sync.Map, key any, build func() any) any {
	if e, ok := m.Load(key); ok {
		return e.(*carried).v
	}
	e := &carried{v: build()}
	actual, loaded := m.LoadOrStore(key, e)
	if !loaded && !isNil(e.v) {
		m.Store(e.v, e)
	}
	return actual.(*carried).v
}

// entry returns the carried entry of value v, nil if v is not carried.
// Validation and encoding ask for every value they meet: only virtual
// hosts and clusters can be carried, so the others are not looked up.
func (c carry) entry(v any) *carried {
	switch v.(type) {
	case *route.VirtualHost, *cluster.Cluster:
	default:
		return nil
	}
	for _, m := range []*sync.Map{c.pure, c.routing} {
		if m == nil {
			continue
		}
		if e, ok := m.Load(v); ok {
			return e.(*carried)
		}
	}
	return nil
}

// isNil reports a nil value or a typed nil (outboundCluster's "no
// cluster").
func isNil(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case *cluster.Cluster:
		return t == nil
	case *route.VirtualHost:
		return t == nil
	}
	return false
}

// Attachment returns the slot where data derived from a carried value
// (xds keeps its encoding there) lives as long as the value is carried;
// nil when v is not carried.
func (x *Index) Attachment(v any) *atomic.Value {
	if e := x.carry.entry(v); e != nil {
		return &e.attach
	}
	return nil
}
