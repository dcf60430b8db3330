package xds

import (
	"context"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// adsMethods are the stream methods StreamRateLimit limits.
var adsMethods = map[string]bool{
	discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResources_FullMethodName: true,
	discoverygrpc.AggregatedDiscoveryService_DeltaAggregatedResources_FullMethodName:  true,
}

// StreamRateLimit returns a stream interceptor that admits new ADS streams
// (state of the world and delta share one budget) through a token bucket
// of rps tokens per second holding up to burst, as istiod does with
// PILOT_MAX_REQUESTS_PER_SECOND. A stream that finds the bucket empty waits
// for its token; one that would wait longer than maxWait is refused at once
// with codes.ResourceExhausted, so the proxy retries with backoff or
// reaches another replica, and refused (if not nil) is incremented. A stream
// whose client goes away while it waits ends with the context's status and
// is not counted. Other methods are never limited, and rps <= 0 turns the
// limit off.
func StreamRateLimit(rps float64, burst int, maxWait time.Duration, refused prometheus.Counter) grpc.StreamServerInterceptor {
	if rps <= 0 {
		return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			return handler(srv, ss)
		}
	}
	lim := rate.NewLimiter(rate.Limit(rps), max(burst, 1))
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !adsMethods[info.FullMethod] {
			return handler(srv, ss)
		}
		if err := admit(ss.Context(), lim, maxWait); err != nil {
			if refused != nil && status.Code(err) == codes.ResourceExhausted {
				refused.Inc()
			}
			return err
		}
		return handler(srv, ss)
	}
}

// admit takes a token from lim, waiting up to maxWait for it. It returns a
// ResourceExhausted status when the wait would be longer, and ctx's status
// when ctx ends first; an unused token is given back.
func admit(ctx context.Context, lim *rate.Limiter, maxWait time.Duration) error {
	r := lim.Reserve()
	delay := r.Delay()
	if !r.OK() || delay > maxWait {
		r.Cancel()
		return status.Errorf(codes.ResourceExhausted,
			"meshd: too many new xDS streams (limit %g/s, PILOT_MAX_REQUESTS_PER_SECOND); retry later", float64(lim.Limit()))
	}
	if delay <= 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		r.Cancel()
		return status.FromContextError(ctx.Err()).Err()
	}
}
