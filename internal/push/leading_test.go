package push

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// leadOpts returns the test durations with LeadingEdge on (meshd's default).
func leadOpts() Options {
	o := opts()
	o.LeadingEdge = true
	return o
}

func TestLeadingEdgeIsolatedEventPushedAtOnce(t *testing.T) {
	type obs struct {
		d      time.Duration
		events int
	}
	seen := make(chan obs, 10)
	o := leadOpts()
	o.Observe = func(d time.Duration, events int) { seen <- obs{d, events} }
	h := newHarness(t, o, false)

	ev := h.enqueue(model.KindVirtualService)
	got := h.next() // the clock has not moved
	assert.Equal(t, ev.Changes, got.Changes)
	assert.Equal(t, 1, got.Events)
	assert.Equal(t, t0, got.Start)
	assert.Same(t, ev.Snapshot, got.Snapshot)
	assert.Equal(t, obs{0, 1}, <-seen)

	// Events that follow within the quiet period are debounced together.
	h.advanceTo(30 * time.Millisecond)
	e2 := h.enqueue(model.KindDestinationRule)
	h.waitTimer(130 * time.Millisecond)
	h.advanceTo(80 * time.Millisecond)
	e3 := h.enqueue(model.KindService)
	h.waitTimer(180 * time.Millisecond)
	h.advanceTo(180*time.Millisecond - time.Nanosecond)
	h.none()
	h.advanceTo(180 * time.Millisecond)
	got = h.next()
	assert.Equal(t, changes(e2, e3), got.Changes)
	assert.Equal(t, at(30*time.Millisecond), got.Start)
	assert.Equal(t, obs{150 * time.Millisecond, 2}, <-seen)

	// Calm again: the next isolated event goes out at once.
	h.advanceTo(time.Hour)
	e4 := h.enqueue(model.KindGateway)
	assert.Equal(t, e4.Changes, h.next().Changes)
}

func TestLeadingEdgeEndpointRemoval(t *testing.T) {
	// EDS debounce on (the default): a lone endpoint change is not held.
	h := newHarness(t, leadOpts(), false)
	ev := h.enqueue(model.KindEndpointSlice)
	got := h.next()
	assert.Equal(t, ev.Changes, got.Changes)
	assert.True(t, got.EndpointsOnly)
}

func TestLeadingEdgeBurstDebounced(t *testing.T) {
	h := newHarness(t, leadOpts(), false)
	first := h.enqueue(model.KindPod) // a rolling update starts
	assert.Equal(t, first.Changes, h.next().Changes)

	// The rest of the burst is batched and capped at DebounceMax.
	step := debounceAfter / 2
	var evs []model.Event
	for off := step; off < step+debounceMax; off += step {
		h.advanceTo(off)
		evs = append(evs, h.enqueue(model.KindEndpointSlice))
		h.waitTimer(min(off+debounceAfter, step+debounceMax))
		h.none()
	}
	h.advanceTo(step + debounceMax)
	got := h.next()
	require.Len(t, evs, 20)
	assert.Equal(t, 20, got.Events)
	assert.Equal(t, changes(evs...), got.Changes)
	assert.Equal(t, at(step), got.Start)

	// Quiet since the last event, but pushed 50ms ago: debounced.
	pushedAt := step + debounceMax
	h.advanceTo(pushedAt + 50*time.Millisecond)
	e := h.enqueue(model.KindService)
	h.waitTimer(pushedAt + 150*time.Millisecond)
	h.none()
	h.advanceTo(pushedAt + 150*time.Millisecond)
	assert.Equal(t, e.Changes, h.next().Changes)

	// No event and no push within the quiet period: pushed at once.
	h.advanceTo(pushedAt + 250*time.Millisecond)
	e = h.enqueue(model.KindService)
	assert.Equal(t, e.Changes, h.next().Changes)
}

func TestLeadingEdgeEDSBypassUnchanged(t *testing.T) {
	o := leadOpts()
	o.EnableEDSDebounce = false
	h := newHarness(t, o, false)
	cfg := h.enqueue(model.KindVirtualService)
	assert.Equal(t, cfg.Changes, h.next().Changes)

	h.advanceTo(30 * time.Millisecond)
	eds := h.enqueue(model.KindEndpointSlice)
	got := h.next()
	assert.Equal(t, eds.Changes, got.Changes)
	assert.True(t, got.EndpointsOnly)

	h.advanceTo(60 * time.Millisecond)
	cfg2 := h.enqueue(model.KindDestinationRule)
	h.waitTimer(160 * time.Millisecond)
	h.none()

	// Endpoint events keep bypassing while the config batch waits.
	h.advanceTo(100 * time.Millisecond)
	eds2 := h.enqueue(model.KindEndpointSlice)
	assert.Equal(t, eds2.Changes, h.next().Changes)
	h.advanceTo(160*time.Millisecond - time.Nanosecond)
	h.none()
	h.advanceTo(160 * time.Millisecond)
	got = h.next()
	assert.Equal(t, cfg2.Changes, got.Changes)
	assert.False(t, got.EndpointsOnly)
}

func TestLeadingEdgeOffIsIstiod(t *testing.T) {
	for _, tc := range []struct {
		leading bool
		pushAt  time.Duration
	}{
		{true, 0},
		{false, debounceAfter},
	} {
		t.Run(map[bool]string{true: "on", false: "off"}[tc.leading], func(t *testing.T) {
			o := opts()
			o.LeadingEdge = tc.leading
			h := newHarness(t, o, false)
			ev := h.enqueue(model.KindSidecar)
			if tc.pushAt > 0 {
				h.waitTimer(tc.pushAt)
				h.advanceTo(tc.pushAt - time.Nanosecond)
				h.none()
				h.advanceTo(tc.pushAt)
			}
			got := h.next()
			assert.Equal(t, ev.Changes, got.Changes)
			assert.Equal(t, at(tc.pushAt), h.clock.Now())
		})
	}
}

func TestEventsDuringPushMergeIntoNextPush(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lastAt    time.Duration // when the last event arrives during push 1
		releaseAt time.Duration // when push 1 returns
		pushAt    time.Duration // when the merged push goes out
	}{
		{"quiet period elapsed during push", 250 * time.Millisecond, 400 * time.Millisecond, 400 * time.Millisecond},
		{"quiet period still running", 380 * time.Millisecond, 400 * time.Millisecond, 480 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, leadOpts(), true)
			e1 := h.enqueue(model.KindService)
			assert.Equal(t, e1.Changes, h.next().Changes) // push 1 runs until released

			// Spaced wider than the quiet period, but a push is running:
			// neither is a leading edge, both wait and merge.
			h.advanceTo(200 * time.Millisecond)
			e2 := h.enqueue(model.KindVirtualService)
			h.advanceTo(tc.lastAt)
			e3 := h.enqueue(model.KindDestinationRule)
			h.advanceTo(tc.releaseAt)
			h.none()

			h.release()
			if tc.pushAt > tc.releaseAt {
				h.waitTimer(tc.pushAt)
				h.none()
				h.advanceTo(tc.pushAt)
			}
			got := h.next()
			assert.Equal(t, changes(e2, e3), got.Changes)
			assert.Equal(t, 2, got.Events)
			assert.Equal(t, at(200*time.Millisecond), got.Start)
			assert.Same(t, e3.Snapshot, got.Snapshot)
			h.release()
		})
	}
}

// TestPushesNeverOverlap hammers a real-clock Debouncer from several
// goroutines and checks that push is never entered twice at once and that
// every event is pushed exactly once.
func TestPushesNeverOverlap(t *testing.T) {
	const writers, each = 4, 250
	var inFlight atomic.Int32
	var pushed atomic.Int64
	o := Options{DebounceAfter: time.Millisecond, DebounceMax: 5 * time.Millisecond, LeadingEdge: true}
	d := NewDebouncer(o, func(r Request) {
		if n := inFlight.Add(1); n != 1 {
			t.Errorf("%d pushes running at once", n)
		}
		time.Sleep(50 * time.Microsecond)
		pushed.Add(int64(r.Events))
		inFlight.Add(-1)
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(ctx, d)
	defer func() { cancel(); requireDone(t, done) }()

	kinds := []model.Kind{model.KindEndpointSlice, model.KindService, model.KindPod}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				d.Enqueue(model.Event{Changes: []model.Change{{Kind: kinds[(w+i)%len(kinds)]}}})
				if i%50 == 0 {
					time.Sleep(2 * time.Millisecond) // let some events stand alone
				}
			}
		})
	}
	wg.Wait()
	require.Eventually(t, func() bool { return pushed.Load() == writers*each }, wait, time.Millisecond,
		"pushed %d of %d events", pushed.Load(), writers*each)
}
