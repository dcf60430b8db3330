package xds

import (
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"time"
)

// gcDefer holds the garbage collector off while an endpoint change fans
// out. An endpoint push sends every watching proxy a small response and
// reads back as many ACKs (at 2,000 proxies, ~10 MB allocated in 150 ms);
// a collection starting in the middle makes the goroutines that allocate
// help mark the heap first (40-80 ms of assists on 2 cores), and the ACKs
// stop arriving meanwhile: the slowest proxies of that change got their
// update 50-100 ms later. For deferWindow after an endpoint push starts,
// the GC percent is doubled (meshd's 50 → 100): the heap may grow to twice
// what is live instead of 1.5 times, so a fan-out does not reach the
// collector's goal, and a collection due is run once the window ends.
// Windows do not overlap (a push during one is covered by it), so under a
// sustained rolling update the collector still runs at least at
// GOGC×deferFactor. Any other push closes the window. Nothing is changed
// when GC is off (GOGC=off).
//
// The GC percent is the process's: every Server shares gcDefers, and a
// window restores the percent only if it is still the one the window set.
type gcDefer struct {
	mu        sync.Mutex
	held      bool
	prev, set int           // the percent the open window found, and set
	gen       uint64        // counts windows: a closed window's timer does nothing
	window    time.Duration // deferWindow if zero
}

// gcDefers is the process's gcDefer.
var gcDefers = &gcDefer{}

const (
	deferFactor = 2
	deferWindow = time.Second
)

// gcPercent reads the GC percent in force (GOGC, or as meshd set it).
func gcPercent() (int, bool) {
	sample := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0, false
	}
	return int(sample[0].Value.Uint64()), true
}

// hold defers collection for deferWindow unless a window is open.
func (g *gcDefer) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held {
		return
	}
	prev, ok := gcPercent()
	if !ok || prev <= 0 || prev > 1<<20 {
		return
	}
	g.prev, g.set = prev, prev*deferFactor
	debug.SetGCPercent(g.set)
	g.held = true
	g.gen++
	gen := g.gen
	window := g.window
	if window == 0 {
		window = deferWindow
	}
	time.AfterFunc(window, func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.gen == gen {
			g.closeLocked()
		}
	})
}

// release closes the open window, if any, at once: a push that is not
// an endpoint change (a canary rebuilds every scope) runs with the
// collector's usual goal.
func (g *gcDefer) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.closeLocked()
}

// closeLocked restores the percent the window found, unless someone else
// changed it meanwhile. g.mu is held.
func (g *gcDefer) closeLocked() {
	if !g.held {
		return
	}
	if now, ok := gcPercent(); ok && now == g.set {
		debug.SetGCPercent(g.prev)
	}
	g.held = false
}
