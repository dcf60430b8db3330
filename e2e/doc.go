// Package e2e holds meshd's end-to-end tests: the real meshd binary, real
// gRPC backends on loopback, and grpc-go's own xDS client as the data plane.
// No fakes. The binary comes from $MESHD_BIN (set by `make e2e`) or is built
// once per run.
package e2e
