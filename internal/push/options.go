package push

import "time"

// Defaults, identical to istiod's.
const (
	// DefaultDebounceAfter is PILOT_DEBOUNCE_AFTER's default.
	DefaultDebounceAfter = 100 * time.Millisecond
	// DefaultDebounceMax is PILOT_DEBOUNCE_MAX's default.
	DefaultDebounceMax = 10 * time.Second
)

// Options tune a Debouncer. Start from DefaultOptions: the zero value has
// EnableEDSDebounce and LeadingEdge false, unlike the defaults.
type Options struct {
	// DebounceAfter is the quiet period (PILOT_DEBOUNCE_AFTER): a batch is
	// pushed once no event has arrived for this long. Zero or less means
	// DefaultDebounceAfter.
	DebounceAfter time.Duration
	// DebounceMax caps how long a batch may be held after its first event
	// (PILOT_DEBOUNCE_MAX). Zero or less means DefaultDebounceMax.
	DebounceMax time.Duration
	// EnableEDSDebounce (PILOT_ENABLE_EDS_DEBOUNCE) debounces endpoint-only
	// events like any other. When false they bypass the debounce: they are
	// pushed at once, on their own, and pending config events keep waiting.
	EnableEDSDebounce bool
	// LeadingEdge (MESHD_PUSH_LEADING_EDGE; istiod has no such mode) pushes
	// an isolated event at once instead of after its quiet period. An event
	// is isolated when no other debounced event entered, and no push
	// returned, within DebounceAfter before it, and no batch is pending.
	// Events that follow it are debounced as usual, so a single change in a
	// calm period reaches proxies without delay while a burst is still
	// batched. False gives istiod's semantics exactly.
	LeadingEdge bool
	// Observe, if set, is called for every debounced push with the time the
	// batch spent in the Debouncer (push time − Request.Start) and the number
	// of events merged, for pilot_debounce_time. It runs on the Run goroutine
	// just before push and must be quick. Leading-edge pushes are observed
	// (with a near-zero time); bypassed endpoint pushes are not, as in istiod.
	Observe func(d time.Duration, events int)
	// Clock supplies time; nil means the real clock.
	Clock Clock
}

// DefaultOptions returns meshd's defaults: istiod's (100ms quiet period, 10s
// cap, EDS debounce enabled) plus LeadingEdge, with the real clock.
func DefaultOptions() Options {
	return Options{
		DebounceAfter:     DefaultDebounceAfter,
		DebounceMax:       DefaultDebounceMax,
		EnableEDSDebounce: true,
		LeadingEdge:       true,
		Clock:             RealClock(),
	}
}

// WithDefaults returns o with unset durations and Clock replaced by their
// defaults. EnableEDSDebounce, LeadingEdge and Observe are kept as they are.
func (o Options) WithDefaults() Options {
	if o.DebounceAfter <= 0 {
		o.DebounceAfter = DefaultDebounceAfter
	}
	if o.DebounceMax <= 0 {
		o.DebounceMax = DefaultDebounceMax
	}
	if o.Clock == nil {
		o.Clock = RealClock()
	}
	return o
}
