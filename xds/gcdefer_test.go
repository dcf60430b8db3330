package xds

import (
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestGCDeferDoublesThePercentForAWindow(t *testing.T) {
	// Endpoint pushes of earlier tests may have opened the process's window.
	require.Eventually(t, func() bool { return !gcDefers.holding() }, 5*time.Second, 10*time.Millisecond)
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

	// A percent set by someone else during a window is not undone.
	g.hold()
	require.Equal(t, 100, percent())
	debug.SetGCPercent(70)
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, 70, percent())
	require.False(t, g.holding())
	debug.SetGCPercent(50)

	// Released early (a config push), and the old window's timer does not
	// close the next one.
	g.hold()
	require.Equal(t, 100, percent())
	g.release()
	require.Equal(t, 50, percent())
	time.Sleep(50 * time.Millisecond)
	g.hold()
	time.Sleep(70 * time.Millisecond) // the released window's timer fired meanwhile
	require.Equal(t, 100, percent())
	require.Eventually(t, func() bool { return percent() == 50 }, 2*time.Second, 10*time.Millisecond)

	debug.SetGCPercent(-1) // GOGC=off: left alone
	g.hold()
	_, ok := gcPercent()
	require.True(t, ok)
	require.False(t, g.holding())
}

// holding reports whether a window is open.
func (g *gcDefer) holding() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.held
}
