package push

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fired returns the value waiting on c, if any.
func fired(c <-chan time.Time) (time.Time, bool) {
	select {
	case v := <-c:
		return v, true
	default:
		return time.Time{}, false
	}
}

func TestFakeClockAdvanceFiresDueTimers(t *testing.T) {
	c := NewFakeClock(t0)
	late := c.NewTimer(3 * time.Second)
	early := c.NewTimer(time.Second)
	assert.Equal(t, []time.Time{at(time.Second), at(3 * time.Second)}, c.Timers())

	c.Advance(999 * time.Millisecond)
	_, ok := fired(early.C())
	assert.False(t, ok)

	c.Advance(2 * time.Second)
	v, ok := fired(early.C())
	require.True(t, ok)
	assert.Equal(t, at(time.Second), v, "fires with its deadline")
	_, ok = fired(late.C())
	assert.False(t, ok)
	assert.Equal(t, at(2999*time.Millisecond), c.Now())
	assert.Equal(t, []time.Time{at(3 * time.Second)}, c.Timers())
}

func TestFakeClockStopAndReset(t *testing.T) {
	c := NewFakeClock(t0)
	tm := c.NewTimer(time.Second)
	assert.True(t, tm.Stop())
	assert.False(t, tm.Stop())
	c.Advance(time.Hour)
	_, ok := fired(tm.C())
	assert.False(t, ok, "stopped timer fired")

	assert.False(t, tm.Reset(time.Second))
	c.Advance(time.Second)
	assert.False(t, tm.Reset(time.Minute), "fired timer reported armed")
	_, ok = fired(tm.C())
	assert.False(t, ok, "Reset must drop an undelivered fire")

	assert.True(t, tm.Reset(0))
	v, ok := fired(tm.C())
	assert.True(t, ok, "non-positive duration fires at once")
	assert.Equal(t, c.Now(), v)
}

func TestFakeClockWait(t *testing.T) {
	c := NewFakeClock(t0)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	go c.NewTimer(time.Minute)
	require.NoError(t, c.WaitForTimers(ctx, 1))
	require.NoError(t, c.WaitForTimer(ctx, at(time.Minute)))

	short, cancelShort := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancelShort()
	assert.ErrorIs(t, c.WaitForTimer(short, at(time.Second)), context.DeadlineExceeded)
}
