// Package xdsclient is a small ADS client that behaves like Envoy: it
// subscribes to every cluster and listener (wildcard CDS and LDS), then to
// the ClusterLoadAssignments and route configurations those reference, ACKs
// every response it can decode (NACKs the rest), and records per type what
// it received and when. It speaks state of the world (Start) or, with
// Options.Delta, the incremental protocol (StartWith); Options.OnResponse
// reports each response as it is ACKed, and Wait blocks until a condition
// such as Complete holds. It keeps resource names only (interned, shared by
// all clients of a process; with Options.Versions, a delta client's
// versions too), never the resources, so thousands fit in one process. Its streams decode responses with their own gRPC codec (codec.go):
// one copy of the received bytes, which the resources' Any values alias.
// meshd's e2e tests use it to count what each proxy was sent; the
// load generator (hack/loadgen) runs thousands.
package xdsclient
