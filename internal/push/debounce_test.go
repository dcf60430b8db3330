package push

import (
	"testing"
	"time"

	"github.com/meshd/meshd/internal/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// opts returns istiod's semantics (LeadingEdge off) with the test durations;
// the tests in this file assert istiod's behaviour.
func opts() Options {
	o := DefaultOptions()
	o.DebounceAfter, o.DebounceMax = debounceAfter, debounceMax
	o.LeadingEdge = false
	return o
}

func TestSingleEventPushedAfterQuietPeriod(t *testing.T) {
	h := newHarness(t, opts(), false)
	ev := h.enqueue(model.KindVirtualService)

	h.waitTimer(debounceAfter)
	h.advanceTo(debounceAfter - time.Nanosecond)
	h.none()

	h.advanceTo(debounceAfter)
	got := h.next()
	assert.Equal(t, ev.Changes, got.Changes)
	assert.Equal(t, map[model.Kind]bool{model.KindVirtualService: true}, got.Kinds)
	assert.Same(t, ev.Snapshot, got.Snapshot)
	assert.Equal(t, 1, got.Events)
	assert.Equal(t, t0, got.Start)
	assert.Equal(t, t0, got.First)
	assert.False(t, got.EndpointsOnly)

	// A later event is armed for its own quiet period only once Run is past
	// the push: nothing else was pushed in between.
	h.advanceTo(time.Hour)
	h.enqueue(model.KindGateway)
	h.waitTimer(time.Hour + debounceAfter)
	h.none()
}

func TestContinuousEventsPushedAtDebounceMax(t *testing.T) {
	h := newHarness(t, opts(), false)
	var evs []model.Event
	step := debounceAfter / 2
	for off := time.Duration(0); off < debounceMax; off += step {
		h.advanceTo(off)
		evs = append(evs, h.enqueue(model.KindDestinationRule))
		h.waitTimer(min(off+debounceAfter, debounceMax))
		h.none()
	}
	h.advanceTo(debounceMax)

	got := h.next()
	require.Len(t, evs, 20)
	assert.Equal(t, 20, got.Events)
	assert.Equal(t, changes(evs...), got.Changes)
	assert.Same(t, evs[19].Snapshot, got.Snapshot)
	assert.Equal(t, t0, got.Start)

	// The next event starts a new batch with its own quiet period.
	ev := h.enqueue(model.KindSidecar)
	h.waitTimer(debounceMax + debounceAfter)
	h.advanceTo(debounceMax + debounceAfter)
	got = h.next()
	assert.Equal(t, ev.Changes, got.Changes)
	assert.Equal(t, at(debounceMax), got.Start)
}

func TestEventsWithinQuietPeriodMerged(t *testing.T) {
	h := newHarness(t, opts(), false)
	e1 := h.enqueue(model.KindService)
	h.waitTimer(debounceAfter)
	h.advanceTo(60 * time.Millisecond)
	e2 := h.enqueue(model.KindEndpointSlice, model.KindPod)
	h.waitTimer(160 * time.Millisecond)
	h.advanceTo(159 * time.Millisecond)
	h.none()

	h.advanceTo(160 * time.Millisecond)
	got := h.next()
	assert.Equal(t, 2, got.Events)
	assert.Equal(t, changes(e1, e2), got.Changes)
	assert.Equal(t, map[model.Kind]bool{model.KindService: true, model.KindEndpointSlice: true, model.KindPod: true}, got.Kinds)
	assert.Same(t, e2.Snapshot, got.Snapshot)
	assert.False(t, got.EndpointsOnly)
}

func TestRunningPushHoldsNextBatch(t *testing.T) {
	for _, tc := range []struct {
		name      string
		releaseAt time.Duration // when the first push returns
		pushAt    time.Duration // when the held batch is pushed
	}{
		{"quiet period elapsed during push", 400 * time.Millisecond, 400 * time.Millisecond},
		{"quiet period still running", 250 * time.Millisecond, 300 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, opts(), true)
			e1 := h.enqueue(model.KindVirtualService)
			h.waitTimer(debounceAfter)
			h.advanceTo(debounceAfter)
			assert.Equal(t, changes(e1), h.next().Changes)

			// Push 1 is still running: the batch ready at +300ms waits.
			e2 := h.enqueue(model.KindVirtualService)
			h.advanceTo(200 * time.Millisecond)
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
			assert.Equal(t, at(debounceAfter), got.Start)
			assert.Same(t, e3.Snapshot, got.Snapshot)
			h.release()
		})
	}
}

func TestEDSDebounce(t *testing.T) {
	t.Run("disabled: endpoint events bypass, config waits", func(t *testing.T) {
		o := opts()
		o.EnableEDSDebounce = false
		h := newHarness(t, o, false)
		cfg := h.enqueue(model.KindVirtualService)
		h.waitTimer(debounceAfter)
		h.advanceTo(30 * time.Millisecond)

		eds := h.enqueue(model.KindEndpointSlice, model.KindEndpointSlice)
		got := h.next()
		assert.Equal(t, eds.Changes, got.Changes)
		assert.True(t, got.EndpointsOnly)
		assert.Equal(t, 1, got.Events)
		assert.Equal(t, at(30*time.Millisecond), got.Start)

		// The config event keeps its own quiet period, unmoved by the bypass.
		h.waitTimer(debounceAfter)
		h.advanceTo(debounceAfter - time.Nanosecond)
		h.none()
		h.advanceTo(debounceAfter)
		got = h.next()
		assert.Equal(t, cfg.Changes, got.Changes)
		assert.False(t, got.EndpointsOnly)
	})
	t.Run("disabled: config due during an endpoint push follows it", func(t *testing.T) {
		o := opts()
		o.EnableEDSDebounce = false
		h := newHarness(t, o, true)
		cfg := h.enqueue(model.KindGateway)
		h.waitTimer(debounceAfter)
		h.advanceTo(30 * time.Millisecond)
		eds := h.enqueue(model.KindEndpointSlice)
		assert.Equal(t, eds.Changes, h.next().Changes)

		h.advanceTo(debounceAfter) // the endpoint push is still running
		h.none()
		h.release()
		assert.Equal(t, cfg.Changes, h.next().Changes)
		h.release()
	})
	t.Run("disabled: mixed events are debounced", func(t *testing.T) {
		o := opts()
		o.EnableEDSDebounce = false
		h := newHarness(t, o, false)
		ev := h.enqueue(model.KindEndpointSlice, model.KindService)
		h.waitTimer(debounceAfter)
		h.none()
		h.advanceTo(debounceAfter)
		assert.Equal(t, ev.Changes, h.next().Changes)
	})
	t.Run("enabled: endpoint events are debounced", func(t *testing.T) {
		h := newHarness(t, opts(), false)
		ev := h.enqueue(model.KindEndpointSlice)
		h.waitTimer(debounceAfter)
		h.advanceTo(debounceAfter - time.Nanosecond)
		h.none()
		h.advanceTo(debounceAfter)
		got := h.next()
		assert.Equal(t, ev.Changes, got.Changes)
		assert.True(t, got.EndpointsOnly)
	})
}

func TestObserve(t *testing.T) {
	type obs struct {
		d      time.Duration
		events int
	}
	seen := make(chan obs, 10)
	o := opts()
	o.Observe = func(d time.Duration, events int) { seen <- obs{d, events} }
	h := newHarness(t, o, false)
	h.enqueue(model.KindService)
	h.waitTimer(debounceAfter)
	h.advanceTo(40 * time.Millisecond)
	h.enqueue(model.KindService)
	h.waitTimer(140 * time.Millisecond)
	h.advanceTo(140 * time.Millisecond)
	h.next()
	assert.Equal(t, obs{140 * time.Millisecond, 2}, <-seen)
}
