package xds

import (
	"slices"
	"strconv"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
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

// debugDeltaStream is a delta stream as go-control-plane's server sees it:
// debug requests are answered as they are received and never handed on.
// go-control-plane receives on one goroutine and sends on another; Send is
// serialised with the debug answers the receiving one sends.
type debugDeltaStream struct {
	discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesServer
	srv *Server

	sendMu sync.Mutex

	// Owned by the receiving goroutine.
	node string
	// held is the node of a request not handed on (an SDS request refused
	// for want of identity), given to the next one that is: go-control-
	// plane knows the stream's node from its first request only.
	held      *core.Node
	nonce     int64
	debugOnly bool
	proxy     bool // a request of another type came first

	mu  sync.Mutex
	err error // the refusal that ended the stream
}

// Send serialises go-control-plane's responses with debug answers.
func (d *debugDeltaStream) Send(r *discovery.DeltaDiscoveryResponse) error {
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	return d.AggregatedDiscoveryService_DeltaAggregatedResourcesServer.Send(r)
}

// SendMsg serialises as Send.
func (d *debugDeltaStream) SendMsg(m any) error {
	d.sendMu.Lock()
	defer d.sendMu.Unlock()
	return d.AggregatedDiscoveryService_DeltaAggregatedResourcesServer.SendMsg(m)
}

// Recv returns the next request that is not a debug request, answering
// those before it. A refusal ends the stream: Recv fails, and failure
// returns the refusal for the stream's status.
func (d *debugDeltaStream) Recv() (*discovery.DeltaDiscoveryRequest, error) {
	for {
		req, err := d.AggregatedDiscoveryService_DeltaAggregatedResourcesServer.Recv()
		if err != nil {
			return nil, err
		}
		if req.GetNode() != nil && d.node == "" {
			d.node = req.GetNode().GetId()
		}
		if !isDebugType(req.GetTypeUrl()) {
			if d.debugOnly {
				return nil, d.fail(errDebugOnly)
			}
			d.proxy = true
			if d.srv.secretsRefused(d.Context(), req.GetTypeUrl(), d.node) {
				if req.GetNode() != nil && d.held == nil {
					d.held = req.GetNode()
				}
				continue // sdsauth.go: not handed on, nothing sent
			}
			if d.held != nil {
				if req.GetNode() == nil {
					req.Node = d.held
				}
				d.held = nil
			}
			return req, nil
		}
		if !d.proxy {
			d.debugOnly = true
		}
		if err := d.answer(req); err != nil {
			return nil, d.fail(err)
		}
	}
}

// answer answers one delta debug request: its subscribed name. A request
// subscribing nothing that carries a nonce is an ACK or NACK.
func (d *debugDeltaStream) answer(req *discovery.DeltaDiscoveryRequest) error {
	names := req.GetResourceNamesSubscribe()
	if len(names) == 0 && req.GetResponseNonce() != "" {
		return nil
	}
	res, err := d.srv.answerDebug(debugRequest{ctx: d.Context(), typeURL: req.GetTypeUrl(), names: names, node: d.node})
	if err != nil {
		return err
	}
	d.nonce++
	// Its own nonces: go-control-plane numbers its responses from 1 too.
	nonce := "debug-" + strconv.FormatInt(d.nonce, 10)
	return d.Send(&discovery.DeltaDiscoveryResponse{TypeUrl: DebugType, SystemVersionInfo: nonce, Nonce: nonce,
		Resources: []*discovery.Resource{{Name: names[0], Version: nonce, Resource: res}}})
}

func (d *debugDeltaStream) fail(err error) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
	return err
}

// failure returns the refusal that ended the stream, if one did.
func (d *debugDeltaStream) failure() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.err
}
