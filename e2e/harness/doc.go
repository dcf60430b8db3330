// Package harness holds what meshd's end-to-end suites share: the real meshd
// binary started as a child process, real gRPC backends that name themselves
// in a response header, grpc-go's real xDS client dialled through meshd, and
// readers of meshd's admin endpoints (/debug/syncz) to wait for ACKs.
package harness
