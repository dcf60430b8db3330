package xds

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
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

// releaseMin is how much free heap, held from the operating system, makes
// a quiet server return it (a forced collection costs tens of
// milliseconds; below this it is not worth one).
const releaseMin = 32 << 20

// compactWhenIdle releases the memos once no scope has been built for
// memoIdle, and returns the memory freed to the operating system; and
// once no response has been sent for memoIdle either, returns what the
// responses' encoding left free (a connect storm keeps sending well after
// its last scope build).
func (s *Server) compactWhenIdle(ctx context.Context) {
	t := time.NewTicker(memoIdle / 4)
	defer t.Stop()
	var released time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// The storm's or push's transient memory, and the memos, are
			// free now; without this the runtime keeps the heap's peak
			// size until the next collections shrink its goal.
			if s.compact(memoIdle) || s.quietAfterSending(released, memoIdle, releaseMin) {
				debug.FreeOSMemory()
				released = time.Now()
				s.log.Debug("returned free memory to the operating system")
			}
		}
	}
}

// quietAfterSending reports whether responses were sent since released,
// none for idle, no scope was built for idle (nor is being built), and at
// least min bytes of free heap are held.
func (s *Server) quietAfterSending(released time.Time, idle time.Duration, min uint64) bool {
	last := time.Unix(0, s.lastSent.Load())
	if !last.After(released) || time.Since(last) < idle {
		return false
	}
	// Not while a push runs (the forced collection would slow it down).
	if !s.mu.TryLock() {
		return false
	}
	building := time.Since(s.built) < idle
	s.mu.Unlock()
	if building {
		return false
	}
	sample := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}}
	metrics.Read(sample)
	return sample[0].Value.Kind() == metrics.KindUint64 && sample[0].Value.Uint64() >= min
}

// compact releases the memos if no scope was built for idle and they were
// not released since, and reports whether it did.
func (s *Server) compact(idle time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.compacted || s.index == nil || time.Since(s.built) < idle {
		return false
	}
	released := map[*translate.Index]bool{s.index: true}
	s.index.ReleaseMemos()
	s.hashes = newWireMemo(s.index)
	for _, ss := range s.scopes {
		// A scope's output is built again on demand from the Index of its
		// last good build (scopeOutput); every stream, delta or not, is
		// served from the published wire form.
		if ss.builtFrom != nil {
			ss.out = nil
		}
		if x := ss.builtFrom; x != nil && !released[x] {
			x.ReleaseMemos() // an older Index, kept by a scope whose rebuilds since failed or were skipped
			released[x] = true
		}
	}
	s.compacted = true
	return true
}

// scopeOutput returns the scope's translated output: the one kept, or,
// after compact released it, the same built again from the Index of the
// scope's last good build (translation is deterministic, so it is what
// was validated and is served; endpoint-only pushes since changed nothing
// but EDS). s.mu is held.
func (s *Server) scopeOutput(ss *scopeState) *translate.Output {
	if ss.out == nil && ss.builtFrom != nil {
		ss.out = buildOutput(ss.builtFrom, ss.scope)
		s.noteBuild() // its memos are released again once idle
	}
	return ss.out
}
