package xds

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestThrottledLimitsConcurrency: PILOT_PUSH_THROTTLE bounds how many scope
// rebuilds run at once, and every scope is rebuilt.
func TestThrottledLimitsConcurrency(t *testing.T) {
	for _, limit := range []int{1, 3, 100} {
		var running, peak, done atomic.Int32
		items := make([]int, 20)
		throttled(limit, items, func(int) {
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			done.Add(1)
		})
		assert.Equal(t, int32(20), done.Load(), "limit %d: every item runs", limit)
		assert.LessOrEqual(t, peak.Load(), int32(limit), "limit %d: never more at once", limit)
		if limit > 1 {
			assert.Greater(t, peak.Load(), int32(1), "limit %d: items do run in parallel", limit)
		}
	}
}
