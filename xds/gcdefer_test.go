package xds

import (
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGCDeferDoublesThePercentForAWindow(t *testing.T) {
	orig := debug.SetGCPercent(50)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	percent := func() int {
		p, ok := gcPercent()
		require.True(t, ok)
		return p
	}
	g := &gcDefer{window: 100 * time.Millisecond}
	g.hold()
	require.Equal(t, 100, percent())
	g.hold() // within the window: no compounding
	require.Equal(t, 100, percent())
	require.Eventually(t, func() bool { return percent() == 50 }, 2*time.Second, 10*time.Millisecond)
	g.hold() // a new window once the last closed
	require.Equal(t, 100, percent())
	require.Eventually(t, func() bool { return percent() == 50 }, 2*time.Second, 10*time.Millisecond)

	debug.SetGCPercent(-1) // GOGC=off: left alone
	g.hold()
	_, ok := gcPercent()
	require.True(t, ok)
	require.False(t, g.held)
}
