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
//     it had at gen; a stream that lags behind the log is compared name by
//     name from the assignments served at gen (seen), which deltaEDS
//     replaces, never alters, so keeping them costs two slice headers.
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
	// seen and seenMs are deltaEDS's sorted names and assignments at gen
	// (shared, never altered): what a stream that lags behind the change
	// log is compared from.
	seen   []string
	seenMs []marshalled
	// widen: the wildcard was subscribed since gen; the names served but
	// not in set are not held yet.
	widen bool
}

// apply applies a request's subscription changes to s and returns the
// names newly subscribed by name (not held: to be sent). Subscriptions are
// applied before unsubscriptions: a name in both ends unsubscribed, as for
// the other types (deltaType.apply) and in go-control-plane.
func (s *edsSub) apply(req *discovery.DeltaDiscoveryRequest, first bool) (added []string) {
	subscribe, unsubscribe := req.GetResourceNamesSubscribe(), req.GetResourceNamesUnsubscribe()
	if first {
		s.initial = req.GetInitialResourceVersions()
		s.wildcard = len(subscribe) == 0
	}
	if len(s.set) == 0 && !slices.Contains(subscribe, explicitWildcard) {
		added = subscribe // the usual first request: the shared list as it is (only read)
	} else {
		for _, n := range subscribe {
			if n == explicitWildcard {
				if !s.wildcard {
					s.wildcard, s.widen = true, s.synced
				}
			} else if _, ok := s.set[n]; !ok {
				added = append(added, n)
			}
		}
	}
	var gone map[string]bool
	for _, n := range unsubscribe {
		if n == explicitWildcard {
			s.wildcard, s.widen = false, false
			continue
		}
		if gone == nil {
			gone = make(map[string]bool, len(unsubscribe))
		}
		gone[n] = true
	}
	if gone != nil {
		added = slices.DeleteFunc(slices.Clone(added), func(n string) bool { return gone[n] })
	}
	kept := len(s.list)
	if gone != nil {
		kept = 0
		for _, n := range s.list {
			if !gone[n] {
				kept++
			}
		}
	}
	if len(added) == 0 && kept == len(s.list) {
		return nil
	}
	list := added
	if len(s.list) > 0 {
		list = make([]string, 0, kept+len(added))
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
	defer func() {
		s.gen, s.synced, s.widen, s.initial = now, true, false, nil
		s.seen, s.seenMs = e.sorted, e.sortedMs
	}()
	if !s.synced {
		return s.compareFirst(e)
	}
	var fresh map[string]bool
	if len(added) > 0 {
		fresh = make(map[string]bool, len(added))
		for _, n := range added {
			fresh[n] = true
		}
	}
	if lagging {
		return s.compareSeen(e, fresh)
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

// compareFirst compares every name the client subscribes to with what it
// presented (initial): what differs is sent, what it presented and is not
// served removed.
func (s *edsSub) compareFirst(e *deltaEDS) (send []marshalled, removed []string) {
	held := func(n string) string { return s.initial[n] } // "" when absent (nil map too)
	if s.wildcard {
		if len(s.initial) == 0 {
			return e.sortedMs, nil // everything served (shared, never altered)
		}
		for i, n := range e.sorted {
			if held(n) != e.sortedMs[i].hash {
				send = append(send, e.sortedMs[i])
			}
		}
		for _, n := range slices.Sorted(maps.Keys(s.initial)) {
			if _, ok := e.get(n); !ok && n != explicitWildcard && s.initial[n] != "" {
				removed = append(removed, n)
			}
		}
		return send, removed
	}
	send = make([]marshalled, 0, len(s.list))
	for _, n := range s.list {
		m, ok := e.get(n)
		switch v := held(n); {
		case ok && v != m.hash:
			send = append(send, m)
		case !ok && v != "":
			removed = append(removed, n)
		}
	}
	return send, removed
}

// compareSeen compares, for a stream that lagged behind the change log,
// the assignments served when it last synced (seen, seenMs: what it
// holds of what it wanted then) with those served now, name by name (both
// sorted), for the names it wants now; fresh are the names newly
// subscribed (held: nothing).
func (s *edsSub) compareSeen(e *deltaEDS, fresh map[string]bool) (send []marshalled, removed []string) {
	heldBefore := func(n string) bool {
		if fresh[n] {
			return false
		}
		if s.wildcard && !s.widen {
			return true
		}
		_, ok := s.set[n]
		return ok
	}
	wantsNow := func(n string) bool {
		if s.wildcard {
			return true
		}
		_, ok := s.set[n]
		return ok
	}
	i, j := 0, 0
	for i < len(s.seen) || j < len(e.sorted) {
		var n string
		var was, is marshalled
		switch {
		case j == len(e.sorted) || (i < len(s.seen) && s.seen[i] < e.sorted[j]):
			n, was = s.seen[i], s.seenMs[i]
			i++
		case i == len(s.seen) || e.sorted[j] < s.seen[i]:
			n, is = e.sorted[j], e.sortedMs[j]
			j++
		default:
			n, was, is = e.sorted[j], s.seenMs[i], e.sortedMs[j]
			i++
			j++
		}
		if !wantsNow(n) {
			continue
		}
		if !heldBefore(n) {
			was = nil
		}
		switch {
		case is != nil && (was == nil || was.hash != is.hash):
			send = append(send, is)
		case is == nil && was != nil:
			removed = append(removed, n)
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
