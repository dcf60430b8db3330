package push

import "time"

// loop is the state of Debouncer.Run, owned by its goroutine.
type loop struct {
	d      *Debouncer
	batch  Request   // the pending debounced batch; owns its slice and map
	last   time.Time // when the newest event of batch entered the Debouncer
	prev   time.Time // when the newest debounced (not bypassed) event entered, batch or lead
	pushed time.Time // when the last push returned; zero before the first
	timer  Timer     // created on first use
	armed  time.Time // the deadline timer is armed for; zero when not armed
}

// step merges the queued events, pushes bypassed endpoint events and an
// isolated leading event at once, and pushes the batch if it is due,
// otherwise arms the timer for its deadline.
//
// The time is read before the queue is drained, so a batch pushed as due at
// that time holds every event enqueued before it. Events that arrive during
// the immediate pushes wait for the next wake-up (their notify is pending),
// so a stream of endpoint events cannot starve the batch.
func (l *loop) step() {
	now := l.d.opts.Clock.Now()
	eds, lead := l.drain()
	if eds.Events > 0 {
		l.push(eds)
	}
	if lead.Events > 0 {
		l.observe(now, lead)
		l.push(lead)
	}
	l.flush(now)
}

// drain moves queued events into the batch. It returns the endpoint-only
// events that bypass the debounce (EnableEDSDebounce false), merged, and the
// leading event to push at once (LeadingEdge), if any.
func (l *loop) drain() (eds, lead Request) {
	o := l.d.opts
	for _, q := range l.d.take() {
		r := requestFromEvent(q.ev, q.at)
		if r.EndpointsOnly && !o.EnableEDSDebounce {
			eds.absorb(r)
			continue
		}
		if o.LeadingEdge && lead.Events == 0 && l.batch.Events == 0 && l.isolated(q.at) {
			lead.absorb(r)
		} else {
			l.batch.absorb(r)
			l.last = q.at
		}
		l.prev = q.at
	}
	return eds, lead
}

// isolated reports whether an event that entered at at follows a quiet
// period: no debounced event and no push returned within DebounceAfter
// before it. An event that arrived while a push was running is never
// isolated.
func (l *loop) isolated(at time.Time) bool {
	quiet := l.d.opts.DebounceAfter
	return (l.prev.IsZero() || at.Sub(l.prev) >= quiet) &&
		(l.pushed.IsZero() || at.Sub(l.pushed) >= quiet)
}

// push hands r to the push function and records when it returned.
func (l *loop) push(r Request) {
	l.d.push(r)
	l.pushed = l.d.opts.Clock.Now()
	if l.d.pushed != nil {
		l.d.pushed()
	}
}

// observe reports a debounced push of r at now to Options.Observe, if set.
// A leading event may have entered after step read now: it waited zero.
func (l *loop) observe(now time.Time, r Request) {
	if l.d.opts.Observe != nil {
		l.d.opts.Observe(max(now.Sub(r.Start), 0), r.Events)
	}
}

// flush pushes the batch if its quiet period or cap has elapsed at now, and
// otherwise arms the timer for whichever comes first.
func (l *loop) flush(now time.Time) {
	if l.batch.Events == 0 {
		return
	}
	o := l.d.opts
	deadline := l.last.Add(o.DebounceAfter)
	if capAt := l.batch.Start.Add(o.DebounceMax); capAt.Before(deadline) {
		deadline = capAt
	}
	if now.Before(deadline) {
		l.arm(deadline)
		return
	}
	l.disarm()
	req := l.batch
	l.batch, l.last = Request{}, time.Time{}
	l.observe(now, req)
	l.push(req)
}

// arm makes the timer fire at deadline. It leaves a timer already armed for
// deadline alone, so a wake-up with nothing new never moves it, and reads the
// time afresh, so the timer is not late by the time spent since step read it
// (it fires at once if deadline has passed meanwhile).
func (l *loop) arm(deadline time.Time) {
	if l.armed.Equal(deadline) {
		return
	}
	l.armed = deadline
	now := l.d.opts.Clock.Now()
	if l.timer == nil {
		l.timer = l.d.opts.Clock.NewTimer(deadline.Sub(now))
		return
	}
	l.timer.Reset(deadline.Sub(now))
}

// disarm stops the timer.
func (l *loop) disarm() {
	if l.timer != nil {
		l.timer.Stop()
	}
	l.armed = time.Time{}
}

// timerC returns the channel to wait on for the deadline, nil when none.
func (l *loop) timerC() <-chan time.Time {
	if l.armed.IsZero() {
		return nil
	}
	return l.timer.C()
}

// close stops the timer and the Debouncer when Run returns.
func (l *loop) close() {
	l.disarm()
	l.d.stop()
}
