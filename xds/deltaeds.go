package xds

import (
	"cmp"
	"maps"
	"runtime"
	"slices"
	"sync"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// deltaEDS serves ClusterLoadAssignments to delta streams, mesh-wide: the
// assignments served (marshalled once, shared with state-of-the-world
// streams), a short log of which names changed in which generation and
// what each was before, and the wake channels of the delta streams. An
// endpoint change wakes every delta stream; each looks up the names
// changed since the generation it last saw in its subscription (edsSub),
// so the cost per stream is the number of names changed, not the number
// it watches, and only the streams that watch a changed name send
// anything.
type deltaEDS struct {
	mu    sync.RWMutex
	gen   uint64
	items map[string]deltaEDSItem
	// sorted and sortedMs are the names served, sorted, and their
	// assignments: replaced, never altered, by update.
	sorted   []string
	sortedMs []marshalled
	changes  []deltaChange // the newest last; at most deltaChangeLog
	wakers   map[*deltaStream]struct{}
	// primed is set by the first push's assignments (update or prime):
	// until then a stream is not answered — a proxy that reconnects to a
	// restarted meshd before its first push would otherwise be told that
	// everything it holds is gone, then sent it all again.
	primed bool
}

// deltaChange is the names one generation changed or removed, and the
// hash each had before ("": not served).
type deltaChange struct {
	gen   uint64
	names []string
	prev  []string
}

const (
	// deltaChangeLog bounds the change log; a stream that last looked
	// before it compares every name it watches.
	deltaChangeLog = 512
	// deltaFanOutChunk is how many streams update wakes before it yields
	// (see deliver).
	deltaFanOutChunk = 64
)

// deltaEDSItem is one served assignment.
type deltaEDSItem struct {
	m   marshalled
	cla *endpoint.ClusterLoadAssignment
}

func newDeltaEDS() *deltaEDS {
	return &deltaEDS{items: map[string]deltaEDSItem{}, wakers: map[*deltaStream]struct{}{}}
}

// update applies changed assignments and removals, and wakes the delta
// streams (deltaFanOutChunk at a time, as deliver).
func (e *deltaEDS) update(ms map[string]marshalled, clas map[string]*endpoint.ClusterLoadAssignment, removed []string) {
	e.mu.Lock()
	e.gen++
	e.primed = true
	c := deltaChange{gen: e.gen, names: make([]string, 0, len(ms)+len(removed)), prev: make([]string, 0, len(ms)+len(removed))}
	renamed := len(removed) > 0 // the set of names changes: sorted is rebuilt
	record := func(name string) {
		c.names = append(c.names, name)
		if old, ok := e.items[name]; ok {
			c.prev = append(c.prev, old.m.hash)
		} else {
			c.prev, renamed = append(c.prev, ""), true
		}
	}
	for name, m := range ms {
		record(name)
		e.items[name] = deltaEDSItem{m: m, cla: clas[name]}
	}
	for _, name := range removed {
		record(name)
		delete(e.items, name)
	}
	// Replaced, never altered (streams hold the old ones): an endpoint
	// change of the same names keeps sorted and copies sortedMs.
	if renamed {
		e.sorted = slices.Sorted(maps.Keys(e.items))
		e.sortedMs = make([]marshalled, len(e.sorted))
		for i, n := range e.sorted {
			e.sortedMs[i] = e.items[n].m
		}
	} else {
		e.sortedMs = slices.Clone(e.sortedMs)
		for name, m := range ms {
			i, _ := slices.BinarySearch(e.sorted, name)
			e.sortedMs[i] = m
		}
	}
	e.changes = append(e.changes, c)
	if len(e.changes) > deltaChangeLog {
		e.changes = e.changes[len(e.changes)-deltaChangeLog:]
	}
	wake := e.wakeList()
	e.mu.Unlock()
	wakeAll(wake)
}

// watch registers a stream to be woken by updates; the returned function
// unregisters it.
func (e *deltaEDS) watch(st *deltaStream) func() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.wakers[st] = struct{}{}
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(e.wakers, st)
	}
}

// changedSince returns the names changed after generation gen, each
// once, with the hash it had at gen ("": not served), the current
// generation, and whether gen is older than the log (every name must then
// be compared). e.mu is held (read).
func (e *deltaEDS) changedSince(gen uint64) (names, prev []string, now uint64, all bool) {
	if gen == e.gen {
		return nil, nil, e.gen, false
	}
	if len(e.changes) == 0 || e.changes[0].gen > gen+1 {
		return nil, nil, e.gen, true
	}
	i, _ := slices.BinarySearchFunc(e.changes, gen+1, func(c deltaChange, g uint64) int { return cmp.Compare(c.gen, g) })
	if i == len(e.changes)-1 {
		c := e.changes[i] // the usual case: one change (slices shared, read only)
		return c.names, c.prev, e.gen, false
	}
	seen := map[string]bool{}
	for _, c := range e.changes[i:] {
		for k, n := range c.names {
			if !seen[n] { // the first change after gen has its hash at gen
				seen[n] = true
				names, prev = append(names, n), append(prev, c.prev[k])
			}
		}
	}
	return names, prev, e.gen, false
}

// get returns the named assignment and whether it is served. e.mu is held.
func (e *deltaEDS) get(name string) (marshalled, bool) {
	it, ok := e.items[name]
	return it.m, ok
}

// assignments returns the assignments served for names (all if none),
// sorted by name.
func (e *deltaEDS) assignments(names ...string) []*endpoint.ClusterLoadAssignment {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if len(names) == 0 {
		names = e.sorted
	}
	var out []*endpoint.ClusterLoadAssignment
	for _, n := range names {
		if it, ok := e.items[n]; ok {
			out = append(out, it.cla)
		}
	}
	return out
}

// prime marks the first push's assignments in when they changed nothing
// (a mesh without any), and wakes the streams waiting for them.
func (e *deltaEDS) prime() {
	e.mu.Lock()
	if e.primed {
		e.mu.Unlock()
		return
	}
	e.primed = true
	wake := e.wakeList()
	e.mu.Unlock()
	wakeAll(wake)
}

// wakeList lists the delta streams to wake (e.mu held).
func (e *deltaEDS) wakeList() []*deltaStream {
	wake := make([]*deltaStream, 0, len(e.wakers))
	for st := range e.wakers {
		wake = append(wake, st)
	}
	return wake
}

// wakeAll wakes streams, deltaFanOutChunk at a time (as deliver).
func wakeAll(wake []*deltaStream) {
	for i, st := range wake {
		st.wakeEDS()
		if (i+1)%deltaFanOutChunk == 0 {
			runtime.Gosched()
		}
	}
}
