package xds

import (
	"maps"
	"slices"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

// edsSub is a delta stream's EDS subscription. A proxy watches the
// assignment of every cluster it holds (1,000 names at 1,000 services);
// keeping, per stream, a map of each name to the hash the client holds
// was most of meshd's memory with 2,000 delta proxies, and filling it
// much of its CPU at a connect storm. So nothing per name is kept:
//
//   - the names subscribed are a list and set shared by every stream that
//     subscribed the same (reqLists), never altered: a change builds a
//     new one;
//   - what the client holds follows from gen: once compared, the stream
//     has been sent every assignment it subscribes to as of generation gen
//     of deltaEDS (what is served then, nothing of what is not), and
//     deltaEDS's change log gives, for each name changed since, the hash
//     it had at gen.
//
// Until the first comparison (meshd's first push may not be in yet),
// initial holds the versions the client presented.
type edsSub struct {
	wildcard bool
	list     []string            // the names subscribed by name, shared
	set      map[string]struct{} // list's set, shared
	initial  map[string]string   // presented, until the first comparison
	synced   bool                // compared once: gen is what the client holds
	gen      uint64
	// widen: the wildcard was subscribed since gen; the names served but
	// not in set are not held yet.
	widen bool
}

// apply applies a request's subscription changes to s and returns the
// names newly subscribed by name (not held: to be sent).
func (s *edsSub) apply(req *discovery.DeltaDiscoveryRequest, first bool) (added []string) {
	subscribe := req.GetResourceNamesSubscribe()
	if first {
		s.initial = req.GetInitialResourceVersions()
		s.wildcard = len(subscribe) == 0
	}
	var gone map[string]bool
	for _, n := range req.GetResourceNamesUnsubscribe() {
		if n == explicitWildcard {
			s.wildcard, s.widen = false, false
			continue
		}
		if _, ok := s.set[n]; ok {
			if gone == nil {
				gone = map[string]bool{}
			}
			gone[n] = true
		}
	}
	if len(s.set) == 0 && len(gone) == 0 && !slices.Contains(subscribe, explicitWildcard) {
		added = subscribe // the usual first request: the shared list as it is (only read)
	} else {
		for _, n := range subscribe {
			if n == explicitWildcard {
				if !s.wildcard {
					s.wildcard, s.widen = true, s.synced
				}
				continue
			}
			if _, ok := s.set[n]; !ok || gone[n] {
				added = append(added, n)
			}
		}
	}
	if len(added) == 0 && len(gone) == 0 {
		return nil
	}
	list := added
	if len(s.list) > 0 {
		list = make([]string, 0, len(s.list)+len(added))
		for _, n := range s.list {
			if !gone[n] {
				list = append(list, n)
			}
		}
		list = append(list, added...)
	}
	s.list = reqLists.intern(list)
	s.set, _ = reqLists.set(s.list)
	if len(s.set) != len(s.list) { // a name repeated in the request
		s.list, added = reqLists.intern(uniqueNames(s.list)), uniqueNames(added)
		s.set, _ = reqLists.set(s.list)
	}
	if s.wildcard && !s.widen {
		return nil // held already, as served under the wildcard
	}
	return added
}

// wants reports whether the client holds name n when it is served (as of
// gen): it subscribes to it by name, or by a wildcard held since gen.
func (s *edsSub) wants(n string) bool {
	if s.wildcard && !s.widen {
		return true
	}
	_, ok := s.set[n]
	return ok
}

// sync compares what the client holds with e's assignments and returns
// what to send and the names to remove; the client then holds e's
// current generation. added are the names newly subscribed. e.mu is held
// (read) and e is primed.
func (s *edsSub) sync(e *deltaEDS, added []string) (send []marshalled, removed []string) {
	changed, prev, now, lagging := e.changedSince(s.gen)
	defer func() { s.gen, s.synced, s.widen, s.initial = now, true, false, nil }()
	if !s.synced || lagging {
		return s.compareAll(e, !s.synced)
	}
	var fresh map[string]bool
	if len(added) > 0 {
		fresh = make(map[string]bool, len(added))
		for _, n := range added {
			fresh[n] = true
		}
	}
	for i, n := range changed {
		if !s.wants(n) {
			continue
		}
		held := prev[i]
		if fresh[n] {
			held, fresh[n] = "", false // newly subscribed: not held
		}
		if m, ok := e.get(n); ok {
			if m.hash != held {
				send = append(send, m)
			}
		} else if held != "" {
			removed = append(removed, n)
		}
	}
	for _, n := range added {
		if fresh[n] {
			if m, ok := e.get(n); ok {
				send = append(send, m)
			}
		}
	}
	if s.widen {
		for i, n := range e.sorted {
			if _, held := s.set[n]; !held {
				send = append(send, e.sortedMs[i])
			}
		}
	}
	return send, removed
}

// compareAll compares every name the client subscribes to with what it
// presented (initial, when first) or, when it lagged behind the change
// log, with nothing known: everything subscribed is sent, and every name
// subscribed that is not served removed.
func (s *edsSub) compareAll(e *deltaEDS, first bool) (send []marshalled, removed []string) {
	held := func(n string) (string, bool) {
		if !first {
			return "", true
		}
		v, ok := s.initial[n]
		return v, ok && v != ""
	}
	if s.wildcard {
		if !first || len(s.initial) == 0 {
			return e.sortedMs, nil // everything served (shared, never altered)
		}
		for i, n := range e.sorted {
			if v, _ := held(n); v != e.sortedMs[i].hash {
				send = append(send, e.sortedMs[i])
			}
		}
	} else {
		send = make([]marshalled, 0, len(s.list))
		for _, n := range s.list {
			m, ok := e.get(n)
			v, has := held(n)
			switch {
			case ok && v != m.hash:
				send = append(send, m)
			case !ok && has:
				removed = append(removed, n)
			}
		}
	}
	if first && s.wildcard {
		for _, n := range slices.Sorted(maps.Keys(s.initial)) {
			if _, ok := e.get(n); !ok && n != explicitWildcard && s.initial[n] != "" {
				removed = append(removed, n)
			}
		}
	}
	return send, removed
}

// uniqueNames returns names without repeats, in their order (names
// itself when there are none).
func uniqueNames(names []string) []string {
	seen := make(map[string]struct{}, len(names))
	out := names[:0:0]
	for _, n := range names {
		if _, dup := seen[n]; !dup {
			seen[n] = struct{}{}
			out = append(out, n)
		}
	}
	if len(out) == len(names) {
		return names
	}
	return out
}
