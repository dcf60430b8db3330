package xds

import (
	"google.golang.org/grpc"
)

// SendThrottle returns a stream interceptor that lets at most n ADS
// responses be in the middle of being sent at once, across all streams, as
// istiod's PILOT_PUSH_THROTTLE limits concurrent pushes. A response to a
// thousand proxies is marshalled once by meshd, but gRPC encodes each
// stream's copy in SendMsg; bounding the sends in flight lets the first
// proxies finish instead of all of them progressing slowly, and bounds the
// encoding work (SendMsg returns once the message is queued in the
// transport, so a message a slow client has not read yet stays queued
// there). n <= 0 turns the throttle off.
func SendThrottle(n int) grpc.StreamServerInterceptor {
	if n <= 0 {
		return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			return handler(srv, ss)
		}
	}
	sem := make(chan struct{}, n)
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if !adsMethods[info.FullMethod] {
			return handler(srv, ss)
		}
		return handler(srv, &throttledStream{ServerStream: ss, sem: sem})
	}
}

type throttledStream struct {
	grpc.ServerStream
	sem chan struct{}
}

// SendMsg holds a slot while the message is written (it returns once gRPC's
// flow control has taken it), or gives up when the stream ends.
func (s *throttledStream) SendMsg(m any) error {
	select {
	case s.sem <- struct{}{}:
	case <-s.Context().Done():
		return s.Context().Err()
	}
	defer func() { <-s.sem }()
	return s.ServerStream.SendMsg(m)
}
