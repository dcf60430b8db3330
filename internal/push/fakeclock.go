package push

import (
	"context"
	"sort"
	"sync"
	"time"
)

// FakeClock is a Clock for tests: time stands still until Advance moves it,
// and timers fire, in deadline order, only from Advance. It is safe for
// concurrent use.
//
// Code under test computes a timer's deadline from Now and then arms it with
// a relative duration, so a test must not Advance while that is happening:
// wait for the timer you expect (WaitForTimer, WaitForTimers) before calling
// Advance.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	armed   map[*fakeTimer]struct{}
	changed chan struct{} // closed and replaced whenever armed changes
}

// NewFakeClock returns a FakeClock reading start.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, armed: map[*fakeTimer]struct{}{}, changed: make(chan struct{})}
}

// Now returns the fake current time.
func (f *FakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// NewTimer returns a Timer that fires once Advance reaches Now()+d (at once
// if d <= 0).
func (f *FakeClock) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{clock: f, c: make(chan time.Time, 1)}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arm(t, f.now.Add(d))
	return t
}

// Advance moves the clock forward by d, firing every timer whose deadline is
// reached, earliest first, with Now reading that deadline while it fires.
func (f *FakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	end := f.now.Add(d)
	for {
		t := f.earliest()
		if t == nil || t.at.After(end) {
			break
		}
		f.now = t.at
		f.fire(t)
	}
	f.now = end
}

// Timers returns the deadlines of the armed timers, sorted.
func (f *FakeClock) Timers() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]time.Time, 0, len(f.armed))
	for t := range f.armed {
		out = append(out, t.at)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// WaitForTimers blocks until at least n timers are armed, or ctx is done (it
// then returns ctx's error).
func (f *FakeClock) WaitForTimers(ctx context.Context, n int) error {
	return f.waitFor(ctx, func() bool { return len(f.armed) >= n })
}

// WaitForTimer blocks until a timer is armed to fire at deadline, or ctx is
// done (it then returns ctx's error).
func (f *FakeClock) WaitForTimer(ctx context.Context, deadline time.Time) error {
	return f.waitFor(ctx, func() bool {
		for t := range f.armed {
			if t.at.Equal(deadline) {
				return true
			}
		}
		return false
	})
}

// waitFor blocks until cond, evaluated with f.mu held, is true.
func (f *FakeClock) waitFor(ctx context.Context, cond func() bool) error {
	for {
		f.mu.Lock()
		ok, changed := cond(), f.changed
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// earliest returns the armed timer with the earliest deadline, or nil.
func (f *FakeClock) earliest() *fakeTimer {
	var first *fakeTimer
	for t := range f.armed {
		if first == nil || t.at.Before(first.at) {
			first = t
		}
	}
	return first
}

// arm (re)arms t for at, dropping any undelivered fire. f.mu must be held.
func (f *FakeClock) arm(t *fakeTimer, at time.Time) bool {
	was := f.disarm(t)
	t.at = at
	if !at.After(f.now) {
		f.fire(t)
		return was
	}
	f.armed[t] = struct{}{}
	f.broadcast()
	return was
}

// disarm stops t and drops any undelivered fire. f.mu must be held.
func (f *FakeClock) disarm(t *fakeTimer) bool {
	select {
	case <-t.c:
	default:
	}
	_, was := f.armed[t]
	if was {
		delete(f.armed, t)
		f.broadcast()
	}
	return was
}

// fire delivers t's deadline on its channel and disarms it. f.mu must be held.
func (f *FakeClock) fire(t *fakeTimer) {
	if _, ok := f.armed[t]; ok {
		delete(f.armed, t)
		f.broadcast()
	}
	select {
	case t.c <- t.at:
	default:
	}
}

// broadcast wakes every waitFor. f.mu must be held.
func (f *FakeClock) broadcast() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// fakeTimer is a FakeClock's Timer.
type fakeTimer struct {
	clock *FakeClock
	c     chan time.Time
	at    time.Time // guarded by clock.mu
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	return t.clock.disarm(t)
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	return t.clock.arm(t, t.clock.now.Add(d))
}
