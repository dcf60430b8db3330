package push

import "time"

// Clock is the source of time for a Debouncer. RealClock is the production
// implementation; FakeClock is for tests.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// NewTimer returns an armed Timer that fires once after d.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer with time.Timer's semantics (Go 1.23 and later:
// after Stop or Reset returns, no stale value is received from C).
type Timer interface {
	// C returns the channel the fire time is delivered on.
	C() <-chan time.Time
	// Stop disarms the timer and reports whether it was armed.
	Stop() bool
	// Reset re-arms the timer to fire after d and reports whether it was
	// armed.
	Reset(d time.Duration) bool
}

// RealClock returns the Clock backed by package time.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }
