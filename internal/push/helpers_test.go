package push

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// t0 is the fake clock's start; tests name instants as offsets from it.
var t0 = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

const (
	debounceAfter = 100 * time.Millisecond
	debounceMax   = time.Second
	// wait bounds how long a test waits for something that must happen; it
	// only matters when the code under test is broken.
	wait = 5 * time.Second
)

// harness runs a Debouncer on a FakeClock and records its pushes.
type harness struct {
	t      *testing.T
	ctx    context.Context
	clock  *FakeClock
	d      *Debouncer
	pushes chan Request
	gate   chan struct{} // if set, every push waits for a value (or ctx done)
	// returned receives a value each time the Debouncer has recorded a push
	// as returned; next (ungated) and release (gated) wait for it, so the
	// test never moves the clock while the loop is still noting the push.
	returned chan struct{}
	seq      uint64
	flight   atomic.Int32
}

// newHarness starts Run with opts (Clock replaced by a FakeClock at t0); it is
// stopped, and Run's return checked, when the test ends.
func newHarness(t *testing.T, opts Options, gated bool) *harness {
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, ctx: ctx, clock: NewFakeClock(t0), pushes: make(chan Request, 100)}
	if gated {
		h.gate = make(chan struct{})
	}
	opts.Clock = h.clock
	h.d = NewDebouncer(opts, h.push)
	h.returned = make(chan struct{}, 100)
	h.d.pushed = func() { h.returned <- struct{}{} }
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.d.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(wait):
			t.Error("Run did not return after cancel")
		}
	})
	return h
}

func (h *harness) push(r Request) {
	if n := h.flight.Add(1); n != 1 {
		h.t.Errorf("%d pushes running at once", n)
	}
	defer h.flight.Add(-1)
	h.pushes <- r
	if h.gate != nil {
		select {
		case <-h.gate:
		case <-h.ctx.Done():
		}
	}
}

// enqueue enqueues an event with one change per kind, a fresh snapshot and
// Seen = now, and returns it.
func (h *harness) enqueue(kinds ...model.Kind) model.Event {
	h.seq++
	ev := model.Event{Snapshot: &model.Snapshot{Seq: h.seq}, Seen: h.clock.Now()}
	for i, k := range kinds {
		ev.Changes = append(ev.Changes, model.Change{Kind: k, Namespace: "ns", Name: fmt.Sprintf("o%d-%d", h.seq, i)})
	}
	h.d.Enqueue(ev)
	return ev
}

// at returns the instant offset by off from t0.
func at(off time.Duration) time.Time { return t0.Add(off) }

// waitTimer waits until a timer is armed for at(off).
func (h *harness) waitTimer(off time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	require.NoError(h.t, h.clock.WaitForTimer(ctx, at(off)), "no timer armed for +%v; armed: %v", off, h.clock.Timers())
}

// advanceTo moves the clock to at(off).
func (h *harness) advanceTo(off time.Duration) {
	h.clock.Advance(at(off).Sub(h.clock.Now()))
}

// next returns the next push, failing the test if none comes.
func (h *harness) next() Request {
	select {
	case r := <-h.pushes:
		if h.gate == nil {
			h.waitReturned()
		}
		return r
	case <-time.After(wait):
		require.FailNow(h.t, "no push")
		return Request{}
	}
}

// waitReturned waits until the Debouncer has recorded a push as returned.
func (h *harness) waitReturned() {
	select {
	case <-h.returned:
	case <-time.After(wait):
		require.FailNow(h.t, "push did not return")
	}
}

// none asserts that nothing has been pushed.
func (h *harness) none() {
	assert.Empty(h.t, h.pushes, "unexpected push")
}

// release lets one gated push return.
func (h *harness) release() {
	select {
	case h.gate <- struct{}{}:
		h.waitReturned()
	case <-time.After(wait):
		require.FailNow(h.t, "no gated push to release")
	}
}

// changes concatenates the changes of evs.
func changes(evs ...model.Event) []model.Change {
	var out []model.Change
	for _, ev := range evs {
		out = append(out, ev.Changes...)
	}
	return out
}
