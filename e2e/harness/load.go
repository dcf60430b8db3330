package harness

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
)

// Load makes RPCs back to back (with a short pause) in the background until
// Stop, counting successes and failures — the "steady stream of RPCs" a
// rolling update must not disturb.
type Load struct {
	Total, Failed atomic.Int64
	firstErr      atomic.Value
	counts        sync.Map // backend → *atomic.Int64
	cancel        context.CancelFunc
	wg            sync.WaitGroup
}

// StartLoad starts calling conn every pause.
func StartLoad(conn *grpc.ClientConn, pause time.Duration) *Load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Load{cancel: cancel}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for ctx.Err() == nil {
			b, err := Call(ctx, conn)
			if ctx.Err() != nil {
				return
			}
			l.Total.Add(1)
			if err != nil {
				l.Failed.Add(1)
				l.firstErr.CompareAndSwap(nil, err.Error())
			} else {
				c, _ := l.counts.LoadOrStore(b, new(atomic.Int64))
				c.(*atomic.Int64).Add(1)
			}
			time.Sleep(pause)
		}
	}()
	return l
}

// Stop ends the load and waits for the last RPC.
func (l *Load) Stop() {
	l.cancel()
	l.wg.Wait()
}

// FirstError is the first failed RPC's error, "" if none failed.
func (l *Load) FirstError() string {
	if v := l.firstErr.Load(); v != nil {
		return v.(string)
	}
	return ""
}

// Counts returns successful RPCs per backend so far.
func (l *Load) Counts() map[string]int {
	out := map[string]int{}
	l.counts.Range(func(k, v any) bool {
		out[k.(string)] = int(v.(*atomic.Int64).Load())
		return true
	})
	return out
}
