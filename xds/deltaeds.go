package xds

import (
	"runtime"
	"slices"
	"sync"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// deltaEDS serves ClusterLoadAssignments to delta streams, mesh-wide: the
// assignments served (marshalled once, shared with state-of-the-world
// streams), a short log of which names changed in which generation, and
// the wake channels of the delta streams. An endpoint change wakes every
// delta stream; each looks up the names changed since the generation it
// last saw in its own subscription (deltaType), so the cost per stream is
// the number of names changed, not the number it watches, and only the
// streams that watch a changed name send anything.
type deltaEDS struct {
	mu      sync.RWMutex
	gen     uint64
	items   map[string]deltaEDSItem
	changes []deltaChange // the newest last; at most deltaChangeLog
	wakers  map[*deltaStream]struct{}
	// primed is set by the first push's assignments (update or prime):
	// until then a stream is not answered — a proxy that reconnects to a
	// restarted meshd before its first push would otherwise be told that
	// everything it holds is gone, then sent it all again.
	primed bool
}

// deltaChange is the names one generation changed or removed.
type deltaChange struct {
	gen   uint64
	names []string
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
	names := make([]string, 0, len(ms)+len(removed))
	for name, m := range ms {
		e.items[name] = deltaEDSItem{m: m, cla: clas[name]}
		names = append(names, name)
	}
	for _, name := range removed {
		delete(e.items, name)
		names = append(names, name)
	}
	e.changes = append(e.changes, deltaChange{gen: e.gen, names: names})
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

// changedSince returns the names changed after generation gen, the
// current generation, and whether gen is older than the log (every name
// must then be compared). e.mu is held (read).
func (e *deltaEDS) changedSince(gen uint64) (names []string, now uint64, all bool) {
	if gen == e.gen {
		return nil, e.gen, false
	}
	if len(e.changes) == 0 || e.changes[0].gen > gen+1 {
		return nil, e.gen, true
	}
	for _, c := range e.changes {
		if c.gen > gen {
			names = append(names, c.names...)
		}
	}
	return names, e.gen, false
}

// get returns the named assignment and whether it is served. e.mu is held.
func (e *deltaEDS) get(name string) (marshalled, bool) {
	it, ok := e.items[name]
	return it.m, ok
}

// names returns the names served, sorted. e.mu is held.
func (e *deltaEDS) names() []string {
	out := make([]string, 0, len(e.items))
	for n := range e.items {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// assignments returns the assignments served for names (all if none),
// sorted by name.
func (e *deltaEDS) assignments(names ...string) []*endpoint.ClusterLoadAssignment {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if len(names) == 0 {
		names = e.names()
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
