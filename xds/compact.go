package xds

import (
	"context"
	"runtime/debug"
	"sync"
	"time"

	"github.com/meshd/meshd/translate"
)

// memoIdle is how long no scope must have been built before the memos of
// translation are released. Views, validation results and each scope's
// translated resources (protobuf objects, several times the size of their
// wire form) are only needed while scopes are being built: after a
// connect storm or a config push they would otherwise stay until the next
// push. A scope built later rebuilds its namespace's view (tens of
// milliseconds at 1,000 services).
const memoIdle = 2 * time.Second

// noteBuild records that a scope was built. s.mu is held.
func (s *Server) noteBuild() {
	s.built, s.compacted = time.Now(), false
}

// compactWhenIdle releases the memos once no scope has been built for
// memoIdle, and returns the memory freed to the operating system.
func (s *Server) compactWhenIdle(ctx context.Context) {
	t := time.NewTicker(memoIdle / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if s.compact(memoIdle) {
				// The storm's or push's transient memory, and the memos,
				// are free now; without this the runtime keeps the heap's
				// peak size until the next collections shrink its goal.
				debug.FreeOSMemory()
			}
		}
	}
}

// compact releases the memos if no scope was built for idle and they were
// not released since, and reports whether it did.
func (s *Server) compact(idle time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.compacted || s.index == nil || time.Since(s.built) < idle {
		return false
	}
	s.index.ReleaseMemos()
	s.hashes = &sync.Map{}
	for _, ss := range s.scopes {
		// A scope served from the current Index is rebuilt from it on
		// demand (scopeOutput); one whose last build failed keeps the
		// last good output it serves, and delta streams need theirs.
		if ss.lastErr == nil && ss.deltaStreams == 0 {
			ss.out = nil
		}
	}
	s.compacted = true
	return true
}

// scopeOutput returns the scope's translated output: the one kept, or,
// after compact released it, the same built again from the current Index
// (its last build succeeded; endpoint-only pushes since did not change
// what it serves besides EDS). s.mu is held.
func (s *Server) scopeOutput(ss *scopeState) *translate.Output {
	if ss.out == nil && s.index != nil {
		ss.out = translate.Build(s.index, ss.scope)
	}
	return ss.out
}
