package model

import (
	"sync"
	"time"
)

// Store holds the current Snapshot and applies Changes to produce the next
// one. It is safe for concurrent use; Snapshots it returns are immutable.
type Store struct {
	mu   sync.Mutex
	cur  *Snapshot
	subs []func(Event)
	now  func() time.Time
}

// NewStore returns a Store holding an empty Snapshot.
func NewStore() *Store {
	return &Store{cur: emptySnapshot(), now: time.Now}
}

// Current returns the latest Snapshot.
func (s *Store) Current() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Subscribe registers fn to be called, in order and synchronously, after every
// Apply that changed something. fn must be quick (hand off to a channel).
func (s *Store) Subscribe(fn func(Event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.subs = append(s.subs, fn)
}

// Apply applies changes and publishes a new Snapshot. Changes that change
// nothing (same object pointer, same error) are dropped; if nothing remains the
// current Snapshot is returned and no event is sent.
func (s *Store) Apply(changes []Change) *Snapshot {
	if len(changes) == 0 {
		return s.Current()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	next, applied := s.cur.apply(changes)
	if len(applied) == 0 {
		return s.cur
	}
	s.cur = next
	ev := Event{Snapshot: next, Changes: applied, Seen: s.now()}
	for _, c := range applied {
		if !c.Seen.IsZero() && c.Seen.Before(ev.Seen) {
			ev.Seen = c.Seen
		}
	}
	for _, fn := range s.subs {
		fn(ev)
	}
	return next
}
