package xds

import (
	"context"
	"io"
	"net"
	"testing"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

const (
	sotwMethod  = discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResources_FullMethodName
	deltaMethod = discoverygrpc.AggregatedDiscoveryService_DeltaAggregatedResources_FullMethodName
)

// ctxStream is a grpc.ServerStream that only has a context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s ctxStream) Context() context.Context { return s.ctx }

// limiterCall runs interceptor for method and reports whether the handler ran.
func limiterCall(ctx context.Context, ic grpc.StreamServerInterceptor, method string) (bool, error) {
	ran := false
	err := ic(nil, ctxStream{ctx: ctx}, &grpc.StreamServerInfo{FullMethod: method, IsServerStream: true, IsClientStream: true},
		func(any, grpc.ServerStream) error { ran = true; return nil })
	return ran, err
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

func TestStreamRateLimit(t *testing.T) {
	ctx := context.Background()
	newCounter := func() prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "meshd_xds_streams_refused_total"})
	}

	t.Run("burst admitted, then refused without waiting", func(t *testing.T) {
		refused := newCounter()
		ic := StreamRateLimit(0.001, 3, time.Second, refused) // next token in 1000s
		for i, m := range []string{sotwMethod, deltaMethod, sotwMethod} {
			ran, err := limiterCall(ctx, ic, m)
			require.NoError(t, err, "stream %d", i)
			assert.True(t, ran)
		}
		for _, m := range []string{sotwMethod, deltaMethod} {
			ran, err := limiterCall(ctx, ic, m)
			assert.False(t, ran, "refused stream reached the handler")
			assert.Equal(t, codes.ResourceExhausted, status.Code(err), "%v", err)
			assert.Contains(t, status.Convert(err).Message(), "PILOT_MAX_REQUESTS_PER_SECOND")
		}
		assert.Equal(t, 2.0, counterValue(t, refused))
	})
	t.Run("other methods are not limited", func(t *testing.T) {
		refused := newCounter()
		ic := StreamRateLimit(0.001, 1, time.Second, refused)
		for range 5 {
			ran, err := limiterCall(ctx, ic, "/grpc.health.v1.Health/Watch")
			require.NoError(t, err)
			assert.True(t, ran)
		}
		ran, err := limiterCall(ctx, ic, sotwMethod)
		require.NoError(t, err, "the ADS budget was spent by another method")
		assert.True(t, ran)
		assert.Zero(t, counterValue(t, refused))
	})
	t.Run("a short wait is admitted", func(t *testing.T) {
		refused := newCounter()
		ic := StreamRateLimit(50, 1, time.Second, refused) // a token every 20ms
		for range 3 {
			ran, err := limiterCall(ctx, ic, deltaMethod)
			require.NoError(t, err)
			assert.True(t, ran)
		}
		assert.Zero(t, counterValue(t, refused))
	})
	t.Run("client gone while waiting: not counted, token returned", func(t *testing.T) {
		refused := newCounter()
		ic := StreamRateLimit(1, 1, time.Minute, refused)
		_, err := limiterCall(ctx, ic, sotwMethod)
		require.NoError(t, err)
		gone, cancel := context.WithCancel(ctx)
		cancel()
		ran, err := limiterCall(gone, ic, sotwMethod)
		assert.False(t, ran)
		assert.Equal(t, codes.Canceled, status.Code(err))
		assert.Zero(t, counterValue(t, refused))
	})
	t.Run("rps 0 turns the limit off", func(t *testing.T) {
		ic := StreamRateLimit(0, 0, 0, nil)
		for range 100 {
			ran, err := limiterCall(ctx, ic, sotwMethod)
			require.NoError(t, err)
			assert.True(t, ran)
		}
	})
}

// adsStub is an ADS server whose streams end at once.
type adsStub struct {
	discoverygrpc.UnimplementedAggregatedDiscoveryServiceServer
}

func (adsStub) StreamAggregatedResources(discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	return nil
}

// TestStreamRateLimitOnServer checks the interceptor on a real gRPC server:
// the refused stream's client sees RESOURCE_EXHAUSTED.
func TestStreamRateLimitOnServer(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := grpc.NewServer(grpc.StreamInterceptor(StreamRateLimit(0.001, 1, time.Second, nil)))
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, adsStub{})
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)

	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	client := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	recv := func() error {
		s, err := client.StreamAggregatedResources(ctx)
		require.NoError(t, err)
		_, err = s.Recv()
		return err
	}
	assert.ErrorIs(t, recv(), io.EOF, "first stream admitted (and ended by the stub)")
	assert.Equal(t, codes.ResourceExhausted, status.Code(recv()), "second stream refused")
}
