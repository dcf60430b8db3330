package xds

import "google.golang.org/grpc"

// TransportOptions returns the gRPC server options meshd's ADS server runs
// with besides its interceptors and keepalive settings: Codec, and the
// transport's buffers and flow-control windows, tuned for thousands of
// proxies with a connection each.
func TransportOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		Codec(),
		grpc.WriteBufferSize(writeBufferSize), grpc.SharedWriteBuffer(true),
		grpc.InitialWindowSize(streamWindow), grpc.InitialConnWindowSize(connWindow),
	}
}

// writeBufferSize is the per-connection write buffer, grpc-go's default
// size, borrowed from a pool while the connection writes
// (SharedWriteBuffer) instead of held by every idle connection (64 MB at
// 2,000 connections). Larger buffers mean fewer system calls per large
// response, but every proxy has its own connection: at 2,000 of them
// 256 KB buffers, allocated afresh for each small EDS write after a
// collection emptied the pool, cost more (endpoint churn p99 520 ms, peak
// 417 MB) than they saved; 16 KB ones doubled the writes of a canary's
// route configurations (canary p99 670 ms). The pool is why an endpoint
// change's fan-out is paced (deliver).
const writeBufferSize = 32 << 10

// Flow-control windows advertised for what proxies send: requests. A
// state-of-the-world EDS ACK names every cluster the proxy watches (~60 KB
// at 1,000 services). With grpc-go's default 64 KB window (grown only by
// its bandwidth probe) the server answers every 16 KB received with a
// WINDOW_UPDATE, for the stream and for the connection, and probes with
// pings: several frames and their system calls per ACK, on every proxy's
// connection at once when an endpoint changes. With these windows a window
// update goes out once per several ACKs. They bound what one connection
// can have sent and meshd not yet read.
const (
	streamWindow = 1 << 20
	connWindow   = 1 << 20
)
