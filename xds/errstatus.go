package xds

import (
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/status"
)

// errStatus converts a request's error_detail into a gRPC status (nil when absent).
func errStatus(s *rpcstatus.Status) *status.Status {
	if s == nil {
		return nil
	}
	return status.FromProto(s)
}
