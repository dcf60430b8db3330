package kube

import (
	"sync"

	"github.com/meshd/meshd/internal/model"
)

// queue buffers changes from informer handlers (which must never block) for
// the drain loop. It is unbounded; the drain loop empties it in one take.
type queue struct {
	mu      sync.Mutex
	changes []model.Change
	ready   chan struct{} // capacity 1: "something is queued"
}

func (q *queue) init() { q.ready = make(chan struct{}, 1) }

func (q *queue) push(cs ...model.Change) {
	if len(cs) == 0 {
		return
	}
	q.mu.Lock()
	q.changes = append(q.changes, cs...)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue) take() []model.Change {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.changes
	q.changes = nil
	return out
}
