package push

import "time"

// loop is the state of Debouncer.Run, owned by its goroutine.
type loop struct {
	d     *Debouncer
	batch Request   // the pending debounced batch; owns its slice and map
	last  time.Time // when the newest event of batch entered the Debouncer
	timer Timer     // created on first use
	armed time.Time // the deadline timer is armed for; zero when not armed
}

// step merges the queued events, pushes bypassed endpoint events at once and
// pushes the batch if it is due, otherwise arms the timer for its deadline.
//
// The time is read before the queue is drained, so a batch pushed as due at
// that time holds every event enqueued before it. Events that arrive during
// the endpoint push wait for the next wake-up (their notify is pending), so a
// stream of endpoint events cannot starve the batch.
func (l *loop) step() {
	now := l.d.opts.Clock.Now()
	if eds := l.drain(); eds.Events > 0 {
		l.d.push(eds)
	}
	l.flush(now)
}

// drain moves queued events into the batch and returns the endpoint-only
// events that bypass the debounce (EnableEDSDebounce false), merged.
func (l *loop) drain() Request {
	var eds Request
	for _, q := range l.d.take() {
		r := requestFromEvent(q.ev, q.at)
		if r.EndpointsOnly && !l.d.opts.EnableEDSDebounce {
			eds.absorb(r)
			continue
		}
		l.batch.absorb(r)
		l.last = q.at
	}
	return eds
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
	if o.Observe != nil {
		o.Observe(now.Sub(req.Start), req.Events)
	}
	l.d.push(req)
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
