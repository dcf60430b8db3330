package xds

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc"
)

// slowStream counts concurrent SendMsg calls.
type slowStream struct {
	grpc.ServerStream
	running, peak *atomic.Int32
}

func (s *slowStream) Context() context.Context { return context.Background() }

func (s *slowStream) SendMsg(any) error {
	n := s.running.Add(1)
	for p := s.peak.Load(); n > p && !s.peak.CompareAndSwap(p, n); p = s.peak.Load() {
	}
	time.Sleep(5 * time.Millisecond)
	s.running.Add(-1)
	return nil
}

// TestSendThrottle: at most n responses are being sent at once across ADS
// streams; other methods are not throttled.
func TestSendThrottle(t *testing.T) {
	var running, peak atomic.Int32
	interceptor := SendThrottle(2)
	info := &grpc.StreamServerInfo{FullMethod: discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResources_FullMethodName}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = interceptor(nil, &slowStream{running: &running, peak: &peak}, info, func(_ any, ss grpc.ServerStream) error {
				for range 3 {
					if err := ss.SendMsg(nil); err != nil {
						return err
					}
				}
				return nil
			})
		}()
	}
	wg.Wait()
	assert.Equal(t, int32(2), peak.Load(), "never more than 2 sends at once, and 2 do run together")

	peak.Store(0)
	other := &grpc.StreamServerInfo{FullMethod: "/other.Service/Stream"}
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = interceptor(nil, &slowStream{running: &running, peak: &peak}, other, func(_ any, ss grpc.ServerStream) error {
				return ss.SendMsg(nil)
			})
		}()
	}
	wg.Wait()
	assert.Greater(t, peak.Load(), int32(2), "other methods are not throttled")
}
