package xds

import (
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// deltaType is a delta stream's state for one type: what it subscribes to
// and what the client holds, as name → content hash. The hash is the one
// the resource was marshalled with (marshalled.hash) and is the version
// each delta Resource carries, so a client that reconnects with its
// initial_resource_versions — to this process, after a restart, or to
// another replica — holds the versions meshd would send, and is sent
// nothing it has.
//
// What the client holds is recorded when a response is sent, not when it
// is acknowledged: a NACKed resource is not resent until its content
// changes (no resend loop), as istiod and go-control-plane do.
type deltaType struct {
	typeURL string
	// wildcard: the first request subscribed nothing (Envoy's LDS and
	// CDS), or "*" was subscribed (and not unsubscribed since).
	wildcard bool
	// res holds a name subscribed explicitly (sub) and/or held by the
	// client (hash not empty). A name neither is not kept.
	res map[string]deltaRes
	// answerFirst: the first request was a wildcard holding nothing; it
	// is answered even if there is nothing to send (Envoy's initialisation
	// waits for a first LDS and CDS response).
	answerFirst bool
	// pub is the scope's publication last compared in full (LDS, CDS,
	// RDS, SDS); gen the EDS generation (deltaEDS).
	pub *published
	gen uint64
	// base, for a wildcard served from a scope's publication, is the
	// publication the client holds exactly (after a full comparison a
	// wildcard holds every name served and nothing else): the next is
	// compared with it name by name, both sorted, and res keeps only the
	// explicit subscriptions — no map of every cluster per stream.
	base *published
}

// deltaRes is what a delta stream knows of one name of a type.
type deltaRes struct {
	hash string // what the client holds; "" nothing
	sub  bool   // subscribed by name
}

// deltaSource is what a type's diff compares with: the scope's
// publication or the mesh-wide assignments.
type deltaSource interface {
	get(name string) (marshalled, bool)
	// each calls fn for every name served, in order.
	each(fn func(name string, m marshalled))
}

// publishedSource is a scope's publication of one type (nil: none yet).
type publishedSource struct{ p *published }

func (s publishedSource) get(name string) (marshalled, bool) {
	if s.p == nil {
		return marshalled{}, false
	}
	return s.p.get(name)
}

func (s publishedSource) each(fn func(string, marshalled)) {
	if s.p == nil {
		return
	}
	for i, n := range s.p.names {
		fn(n, s.p.ms[i])
	}
}

// edsSource is deltaEDS's assignments; its lock is held (read).
type edsSource struct{ e *deltaEDS }

func (s edsSource) get(name string) (marshalled, bool) { return s.e.get(name) }

func (s edsSource) each(fn func(string, marshalled)) {
	for _, n := range s.e.names() {
		fn(n, s.e.items[n].m)
	}
}

func newDeltaType(typeURL string) *deltaType {
	return &deltaType{typeURL: typeURL, res: map[string]deltaRes{}}
}

// apply applies a request's subscription changes (and, on the type's
// first request, its initial_resource_versions and wildcard default). It
// returns the names newly subscribed, to be compared, and whether
// everything must be (the first request, or a wildcard subscribed).
func (t *deltaType) apply(req *discovery.DeltaDiscoveryRequest, first bool) (added []string, full bool) {
	if first {
		full = true
		for n, v := range req.GetInitialResourceVersions() {
			if n != explicitWildcard && v != "" {
				t.res[n] = deltaRes{hash: v}
			}
		}
		if len(req.GetResourceNamesSubscribe()) == 0 {
			t.wildcard = true
			t.answerFirst = len(req.GetInitialResourceVersions()) == 0
		}
	}
	for _, n := range req.GetResourceNamesSubscribe() {
		if n == explicitWildcard {
			if !t.wildcard {
				t.wildcard, full = true, true
			}
			continue
		}
		if e := t.res[n]; !e.sub {
			e.sub = true
			t.res[n] = e
			added = append(added, n)
		}
	}
	for _, n := range req.GetResourceNamesUnsubscribe() {
		if n == explicitWildcard {
			if t.wildcard {
				t.wildcard = false
				for name, e := range t.res {
					if !e.sub {
						delete(t.res, name) // the client forgets what it no longer subscribes to
					} else if t.base != nil {
						if m, ok := t.base.get(name); ok {
							t.res[name] = deltaRes{hash: m.hash, sub: true}
						}
					}
				}
				t.base = nil
			}
			continue
		}
		if e, ok := t.res[n]; ok {
			if t.wildcard && e.hash != "" {
				e.sub = false
				t.res[n] = e // still covered by the wildcard
			} else {
				delete(t.res, n)
			}
		}
	}
	return added, full
}

// diff compares what the client holds with src, for names (or, if full,
// every name the stream subscribes to or holds), records what it will
// hold after the response, and returns the resources to send and the
// names to remove. Each Resource wraps the shared Any: its bytes are sent
// by reference (codec.go).
func (t *deltaType) diff(src deltaSource, names []string, full bool) (send []*discovery.Resource, removed []string) {
	check := func(n string) {
		e := t.res[n]
		if !t.wildcard && !e.sub {
			return
		}
		if m, ok := src.get(n); ok {
			if e.hash != m.hash {
				send = append(send, &discovery.Resource{Name: n, Version: m.hash, Resource: m.any})
				t.res[n] = deltaRes{hash: m.hash, sub: e.sub}
			}
			return
		}
		if e.hash == "" {
			return // neither held nor served: nothing to say
		}
		removed = append(removed, n)
		if e.sub {
			t.res[n] = deltaRes{sub: true}
		} else {
			delete(t.res, n)
		}
	}
	ps, fromScope := src.(publishedSource)
	fromScope = fromScope && ps.p != nil && t.wildcard
	if fromScope && t.base != nil {
		if !full {
			return nil, nil // base has the content served: a new name is held already
		}
		send, removed = walkPublished(t.base, ps.p)
		t.base = ps.p
		return send, removed
	}
	if !full {
		for _, n := range names {
			check(n)
		}
		return send, removed
	}
	if fromScope {
		defer func() {
			// Held: see base. A fresh map with the explicit subscriptions
			// only — a Go map never shrinks, and one that held every
			// cluster would stay that size for the stream's life.
			t.base = ps.p
			next := make(map[string]deltaRes)
			for n, e := range t.res {
				if e.sub {
					next[n] = deltaRes{sub: true}
				}
			}
			t.res = next
		}()
	}
	if t.wildcard {
		src.each(func(n string, m marshalled) {
			if e := t.res[n]; e.hash != m.hash {
				send = append(send, &discovery.Resource{Name: n, Version: m.hash, Resource: m.any})
				if !fromScope { // from a scope, base records it (above)
					t.res[n] = deltaRes{hash: m.hash, sub: e.sub}
				}
			}
		})
	}
	for n, e := range t.res {
		if t.wildcard && e.hash != "" {
			if _, ok := src.get(n); ok {
				continue // compared above
			}
		}
		check(n)
	}
	return send, removed
}

// walkPublished compares two publications of a type (names sorted): the
// resources of next that are new or changed, and the names of prev gone.
func walkPublished(prev, next *published) (send []*discovery.Resource, removed []string) {
	if prev == next {
		return nil, nil
	}
	i, j := 0, 0
	for i < len(prev.names) || j < len(next.names) {
		switch {
		case j == len(next.names) || (i < len(prev.names) && prev.names[i] < next.names[j]):
			removed = append(removed, prev.names[i])
			i++
		case i == len(prev.names) || next.names[j] < prev.names[i]:
			m := next.ms[j]
			send = append(send, &discovery.Resource{Name: next.names[j], Version: m.hash, Resource: m.any})
			j++
		default:
			if m := next.ms[j]; m.hash != prev.ms[i].hash {
				send = append(send, &discovery.Resource{Name: next.names[j], Version: m.hash, Resource: m.any})
			}
			i++
			j++
		}
	}
	return send, removed
}
