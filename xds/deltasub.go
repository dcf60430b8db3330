package xds

import (
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// deltaType is a delta stream's state for one type: what it subscribes to
// and what the client holds, as name → content hash (EDS: edsSub). The
// hash is the one the resource was marshalled with (marshalled.hash) and
// is the version each delta Resource carries, so a client that
// reconnects with its initial_resource_versions — to this process, after
// a restart, or to another replica — holds the versions meshd would send,
// and is sent nothing it has.
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
	// RDS, SDS).
	pub *published
	// eds is the subscription of an EDS stream (res, base and pub unused).
	eds *edsSub
	// initial are the versions the first request presented, until the
	// first comparison (mergeInitial).
	initial map[string]string
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

func newDeltaType(typeURL string) *deltaType {
	t := &deltaType{typeURL: typeURL, res: map[string]deltaRes{}}
	if typeURL == resourcev3.EndpointType {
		t.eds = &edsSub{}
	}
	return t
}

// apply applies a request's subscription changes (and, on the type's
// first request, its initial_resource_versions and wildcard default),
// subscriptions before unsubscriptions. It returns the names newly
// subscribed, to be compared, and whether everything must be (the first
// request, or a wildcard subscribed); for EDS, edsSub.apply's names (its
// sync knows what else to compare).
func (t *deltaType) apply(req *discovery.DeltaDiscoveryRequest, first bool) (added []string, full bool) {
	if t.eds != nil {
		added = t.eds.apply(req, first)
		t.wildcard = t.eds.wildcard
		if first {
			t.answerFirst = t.wildcard && len(req.GetInitialResourceVersions()) == 0
		}
		return added, first
	}
	if first {
		full = true
		// Kept as the request has them until compared (diff): a proxy
		// reconnecting to a restarted meshd may wait for its scope to be
		// built, and 2,000 of them present 2 million clusters.
		t.initial = req.GetInitialResourceVersions()
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
	if len(req.GetResourceNamesUnsubscribe()) > 0 {
		t.mergeInitial() // what an unsubscription forgets may be presented
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

// diff compares what the client holds with p (the scope's publication of
// the type, nil: none yet), for names (or, if full, every name the
// stream subscribes to or holds), records what it will hold after the
// response, and returns the resources to send and the names to remove.
// The resources are the shared marshalled ones (their bytes are sent by
// reference, codec.go); a wildcard holding nothing gets p's own list.
func (t *deltaType) diff(p *published, names []string, full bool) (send []marshalled, removed []string) {
	fromScope := p != nil && t.wildcard
	if fromScope && full && t.base == nil {
		return t.compareWildcard(p)
	}
	t.mergeInitial()
	get := func(n string) (marshalled, bool) {
		if p == nil {
			return nil, false
		}
		return p.get(n)
	}
	check := func(n string) {
		e := t.res[n]
		if !t.wildcard && !e.sub {
			return
		}
		if m, ok := get(n); ok {
			if e.hash != m.hash {
				send = append(send, m)
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
	if fromScope && t.base != nil {
		if !full {
			return nil, nil // base has the content served: a new name is held already
		}
		send, removed = walkPublished(t.base, p)
		t.base = p
		return send, removed
	}
	if !full {
		for _, n := range names {
			check(n)
		}
		return send, removed
	}
	for n := range t.res {
		check(n)
	}
	return send, removed
}

// compareWildcard is a wildcard's first full comparison with its scope's
// publication p: what the client holds (explicit names' hashes, or what
// it presented, read in place: a reconnect presents every cluster, and
// 2,000 streams copying theirs was most of a restarted meshd's memory) is
// compared name by name; after it the client holds p exactly (base), and
// res keeps the explicit subscriptions only — a fresh map: a Go map never
// shrinks, and one that held every cluster would stay that size for the
// stream's life.
func (t *deltaType) compareWildcard(p *published) (send []marshalled, removed []string) {
	presented := t.initial
	held := func(n string) string {
		if e := t.res[n]; e.hash != "" {
			return e.hash
		}
		if n == explicitWildcard {
			return ""
		}
		return presented[n]
	}
	holds := false
	for _, e := range t.res {
		holds = holds || e.hash != ""
	}
	for n, v := range presented {
		if holds {
			break
		}
		holds = v != "" && n != explicitWildcard
	}
	next := make(map[string]deltaRes)
	for n, e := range t.res {
		if e.sub {
			next[n] = deltaRes{sub: true}
		}
	}
	defer func() { t.base, t.res, t.initial = p, next, nil }()
	if !holds {
		return p.ms, nil // everything, as published (shared, not copied)
	}
	for i, n := range p.names {
		if m := p.ms[i]; held(n) != m.hash {
			send = append(send, m)
		}
	}
	for n, e := range t.res {
		if _, ok := p.get(n); !ok && e.hash != "" {
			removed = append(removed, n)
		}
	}
	for n, v := range presented {
		if _, ok := p.get(n); !ok && v != "" && n != explicitWildcard && t.res[n].hash == "" {
			removed = append(removed, n)
		}
	}
	return send, removed
}

// mergeInitial records the versions the client presented (initial) as
// held, for the names it holds nothing of yet.
func (t *deltaType) mergeInitial() {
	for n, v := range t.initial {
		if e := t.res[n]; n != explicitWildcard && v != "" && e.hash == "" {
			t.res[n] = deltaRes{hash: v, sub: e.sub}
		}
	}
	t.initial = nil
}

// walkPublished compares two publications of a type (names sorted): the
// resources of next that are new or changed, and the names of prev gone.
func walkPublished(prev, next *published) (send []marshalled, removed []string) {
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
			send = append(send, next.ms[j])
			j++
		default:
			if m := next.ms[j]; m.hash != prev.ms[i].hash {
				send = append(send, m)
			}
			i++
			j++
		}
	}
	return send, removed
}
