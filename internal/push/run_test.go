package push

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/meshd/meshd/internal/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// runAsync starts d.Run(ctx) and returns a channel closed when it returns.
func runAsync(ctx context.Context, d *Debouncer) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.Run(ctx)
	}()
	return done
}

func requireDone(t *testing.T, done <-chan struct{}) {
	t.Helper()
	select {
	case <-done:
	case <-time.After(wait):
		require.FailNow(t, "Run did not return after cancel")
	}
}

func TestRunReturnsOnCancel(t *testing.T) {
	t.Run("idle", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		d := NewDebouncer(opts(), func(Request) { t.Error("unexpected push") })
		done := runAsync(ctx, d)
		cancel()
		requireDone(t, done)
	})
	t.Run("batch pending: dropped, later events too", func(t *testing.T) {
		clock := NewFakeClock(t0)
		o := opts()
		o.Clock = clock
		pushed := make(chan Request, 10)
		d := NewDebouncer(o, func(r Request) { pushed <- r })
		ctx, cancel := context.WithCancel(context.Background())
		done := runAsync(ctx, d)
		d.Enqueue(model.Event{Changes: []model.Change{{Kind: model.KindService}}})
		ctx2, cancel2 := context.WithTimeout(context.Background(), wait)
		defer cancel2()
		require.NoError(t, clock.WaitForTimer(ctx2, at(debounceAfter)))

		cancel()
		requireDone(t, done)
		assert.Empty(t, clock.Timers(), "timer left armed")
		d.Enqueue(model.Event{Changes: []model.Change{{Kind: model.KindService}}}) // must not block
		clock.Advance(time.Hour)
		assert.Empty(t, pushed)
	})
	t.Run("push running: returns once it does", func(t *testing.T) {
		o := opts()
		o.EnableEDSDebounce = false
		inPush, unblock := make(chan struct{}), make(chan struct{})
		d := NewDebouncer(o, func(Request) {
			close(inPush)
			<-unblock
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := runAsync(ctx, d)
		d.Enqueue(model.Event{Changes: []model.Change{{Kind: model.KindEndpointSlice}}})
		<-inPush
		cancel()
		select {
		case <-done:
			require.FailNow(t, "Run returned while push was running")
		default:
		}
		close(unblock)
		requireDone(t, done)
	})
}

func TestConcurrentEnqueue(t *testing.T) {
	const writers, each = 8, 200
	h := newHarness(t, opts(), false)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				h.d.Enqueue(model.Event{Changes: []model.Change{{Kind: model.KindPod, Namespace: fmt.Sprint(w), Name: fmt.Sprint(i)}}})
			}
		})
	}
	wg.Wait()
	h.waitTimer(debounceAfter)
	h.advanceTo(debounceAfter)

	got := h.next()
	require.Equal(t, writers*each, got.Events)
	require.Len(t, got.Changes, writers*each)
	nextName := map[string]int{}
	for _, c := range got.Changes {
		require.Equal(t, fmt.Sprint(nextName[c.Namespace]), c.Name, "writer %s out of order", c.Namespace)
		nextName[c.Namespace]++
	}
}

func TestStoreSubscription(t *testing.T) {
	h := newHarness(t, opts(), false)
	store := model.NewStore()
	store.Subscribe(h.d.Enqueue)
	s1 := store.Apply([]model.Change{{Kind: model.KindNamespace, Name: "a", Object: &model.Namespace{Name: "a"}}})
	s2 := store.Apply([]model.Change{{Kind: model.KindNamespace, Name: "b", Object: &model.Namespace{Name: "b"}}})
	require.NotSame(t, s1, s2)
	h.waitTimer(debounceAfter)
	h.advanceTo(debounceAfter)

	got := h.next()
	assert.Equal(t, 2, got.Events)
	assert.Same(t, s2, got.Snapshot)
	require.Len(t, got.Changes, 2)
	assert.Equal(t, "a", got.Changes[0].Name)
	assert.Equal(t, "b", got.Changes[1].Name)
}

func TestRealClock(t *testing.T) {
	pushed := make(chan Request, 1)
	d := NewDebouncer(Options{DebounceAfter: time.Millisecond, EnableEDSDebounce: true}, func(r Request) { pushed <- r })
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(ctx, d)
	defer func() { cancel(); requireDone(t, done) }()

	d.Enqueue(model.Event{Changes: []model.Change{{Kind: model.KindGateway}}})
	select {
	case r := <-pushed:
		assert.Equal(t, 1, r.Events)
	case <-time.After(wait):
		require.FailNow(t, "no push")
	}
}
