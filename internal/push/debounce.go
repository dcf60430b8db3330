package push

import (
	"context"
	"sync"
	"time"

	"github.com/meshd/meshd/internal/model"
)

// Debouncer merges model.Events into Requests with istiod's debounce
// semantics (plus an optional leading edge, see Options.LeadingEdge) and
// hands them to a push function, one at a time, from its Run
// goroutine. Create it with NewDebouncer, feed it with Enqueue (for example
// Store.Subscribe(d.Enqueue)) and start Run once.
type Debouncer struct {
	opts   Options
	push   func(Request)
	notify chan struct{} // capacity 1: "the queue may be non-empty"
	// pushed, if set (by tests), is called on Run's goroutine once a push
	// has returned and been recorded, so a test can move a fake clock
	// without racing the loop's bookkeeping.
	pushed func()

	mu      sync.Mutex
	queue   []queued // events not yet seen by Run, in arrival order
	stopped bool     // Run has returned; later events are dropped
}

// queued is an event and the time it entered the Debouncer.
type queued struct {
	ev model.Event
	at time.Time
}

// NewDebouncer returns a Debouncer that calls push with merged Requests.
// Unset fields of opts take their defaults (see Options.WithDefaults).
func NewDebouncer(opts Options, push func(Request)) *Debouncer {
	return &Debouncer{opts: opts.WithDefaults(), push: push, notify: make(chan struct{}, 1)}
}

// Enqueue hands ev to the Debouncer. It is safe to call from any goroutine,
// never waits for Run or for a push, and keeps events in call order. Events
// enqueued before Run starts wait for it; events enqueued after Run has
// returned are dropped.
func (d *Debouncer) Enqueue(ev model.Event) {
	d.mu.Lock()
	if d.stopped {
		d.mu.Unlock()
		return
	}
	d.queue = append(d.queue, queued{ev: ev, at: d.opts.Clock.Now()})
	d.mu.Unlock()
	select {
	case d.notify <- struct{}{}:
	default:
	}
}

// take removes and returns the queued events.
func (d *Debouncer) take() []queued {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.queue
	d.queue = nil
	return q
}

// stop makes later Enqueue calls no-ops and drops what is queued.
func (d *Debouncer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopped = true
	d.queue = nil
}

// Run debounces events and calls push until ctx is done. It must be called
// once. Pushes run on this goroutine, so they never overlap: events that
// arrive during a push are merged into the next batch, which is pushed as
// soon as the push returns if its quiet period or cap has already elapsed.
// On return, a pending batch is dropped; Run returns after a running push.
func (d *Debouncer) Run(ctx context.Context) {
	l := &loop{d: d}
	defer l.close()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.notify:
		case <-l.timerC():
			l.armed = time.Time{}
		}
		if ctx.Err() != nil {
			return
		}
		l.step()
	}
}
