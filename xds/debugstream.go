package xds

import (
	"slices"
	"strconv"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

// Debug requests on ADS streams (debugxds.go says what is answered). They
// never reach the tracker or a cache: no watch, no scope, and the node they
// carry is not parsed. A stream whose first request is a debug request is
// a debug stream: it is refused any other type, so a debug client is never
// sent mesh config. A proxy's stream may ask for debug too (the identity
// decides, as for any caller).

// errDebugOnly refuses config to a debug stream.
var errDebugOnly = status.Error(codes.FailedPrecondition,
	"meshd: a stream that asked for "+DebugType+" first is served debug requests only; open another stream for config")

// debugDone is the state of a stream's last debug response: a request
// carrying its nonce and names is its ACK or NACK, not a new request.
type debugDone struct {
	nonce string
	names []string
}

// debug answers a state-of-the-world debug request on the stream's loop.
func (st *sotwStream) debug(req *discovery.DiscoveryRequest) error {
	if len(st.watches) == 0 {
		st.debugOnly = true
	}
	if n := req.GetResponseNonce(); n != "" && n == st.debugLast.nonce && slices.Equal(req.GetResourceNames(), st.debugLast.names) {
		return nil
	}
	res, err := st.a.cb.s.answerDebug(debugRequest{ctx: st.stream.Context(), typeURL: req.GetTypeUrl(),
		names: req.GetResourceNames(), node: st.node.GetId()})
	if err != nil {
		return err
	}
	st.nonce++
	nonce := strconv.FormatInt(st.nonce, 10)
	st.debugLast = debugDone{nonce: nonce, names: slices.Clone(req.GetResourceNames())}
	return st.stream.Send(&discovery.DiscoveryResponse{TypeUrl: DebugType, VersionInfo: nonce, Nonce: nonce,
		Resources: []*anypb.Any{res}})
}
