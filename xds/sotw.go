package xds

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"sync/atomic"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// adsServer is meshd's ADS service. Delta streams are served by delta.go;
// state-of-the-world streams here. The state-of-the-world
// loop is go-control-plane's (a watch per type on the caches, a stream-wide
// nonce, requests with a stale nonce ignored, callbacks around every
// request and response), with one difference that matters at thousands
// of proxies: a stream's subscription is the name set of its request list,
// shared by every stream that sends the same list (see listTable.set),
// where go-control-plane builds a map per request — a state-of-the-world
// EDS ACK names every cluster the proxy watches.
type adsServer struct {
	ctx   context.Context
	cache cachev3.Cache
	cb    *tracker
	ids   atomic.Int64
}

func newADSServer(ctx context.Context, cache cachev3.Cache, cb *tracker) *adsServer {
	return &adsServer{ctx: ctx, cache: cache, cb: cb}
}

// DeltaAggregatedResources serves a delta stream (delta.go).
func (a *adsServer) DeltaAggregatedResources(s discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	return a.serveDelta(s)
}

// sotwWatch is a stream's open watch of one type.
type sotwWatch struct {
	cancel func()
	ch     chan cachev3.Response
	nonce  string // of the last response sent for the type
	sub    *sotwSubscription
	sel    int // its channel's index in the stream's select cases
	known  int // its type's index in knownTypes, -1 if none
}

// sotwStream is one state-of-the-world stream's state, owned by its loop.
type sotwStream struct {
	a       *adsServer
	id      int64
	stream  discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer
	node    *core.Node
	nonce   int64
	watches map[string]*sotwWatch // by type URL
	cases   []reflect.SelectCase  // fixedCases, then the watches' channels
	// known holds the channels of the watches of the four types sidecars
	// and gRPC clients use, and of SDS, which gateways use (nil: not
	// watched), for a plain select; other counts the watches of other
	// types, which need reflect.Select (a plain select allocates nothing,
	// reflect.Select some 400 bytes per call: twice per proxy for every
	// endpoint change). A stream that never watches SDS has a nil channel
	// in its case, which select skips without locking or allocating.
	known [len(knownTypes)]chan cachev3.Response
	other int
	// debugOnly is set when the first request was a debug request;
	// debugLast is the last debug response (debugstream.go).
	debugOnly bool
	debugLast debugDone
}

// knownTypes are the types whose watches the plain select covers.
var knownTypes = [...]string{resourcev3.ListenerType, resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.RouteType,
	resourcev3.SecretType}

// next's select has a case per known type: this does not compile if
// knownTypes has other than five.
var _ = [1]struct{}{}[len(knownTypes)-5]

// knownIndex returns typeURL's index in knownTypes, -1 if it is not one.
func knownIndex(typeURL string) int {
	for i, t := range knownTypes {
		if t == typeURL {
			return i
		}
	}
	return -1
}

// Select cases before the watches' channels.
const (
	caseServerDone = iota
	caseStreamDone
	caseRequest
	fixedCases
)

// receive runs recv on a goroutine of its own and hands each request to
// the stream's loop on the channel returned, which it closes when recv
// fails (the client closed the stream, or it broke); it stops waiting
// for the loop when the stream (ctx) or the server ends.
func receive[R any](a *adsServer, ctx context.Context, recv func() (R, error)) <-chan R {
	reqs := make(chan R)
	go func() {
		defer close(reqs)
		for {
			req, err := recv()
			if err != nil {
				return
			}
			select {
			case reqs <- req:
			case <-ctx.Done():
				return
			case <-a.ctx.Done():
				return
			}
		}
	}()
	return reqs
}

// StreamAggregatedResources serves a state-of-the-world stream.
func (a *adsServer) StreamAggregatedResources(s discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	st := &sotwStream{a: a, id: a.ids.Add(1), stream: s, node: &core.Node{}, watches: map[string]*sotwWatch{}}
	defer st.shutdown()
	if err := a.cb.OnStreamOpen(s.Context(), st.id, resourcev3.AnyType); err != nil {
		return err
	}
	in := &hintedRequest{hint: &requestHint{}} // reused: gRPC keeps nothing of it
	reqs := receive(a, s.Context(), func() (*discovery.DiscoveryRequest, error) {
		req := &discovery.DiscoveryRequest{}
		in.DiscoveryRequest = req
		return req, s.RecvMsg(in)
	})
	st.cases = []reflect.SelectCase{
		caseServerDone: {Dir: reflect.SelectRecv, Chan: reflect.ValueOf(a.ctx.Done())},
		caseStreamDone: {Dir: reflect.SelectRecv, Chan: reflect.ValueOf(s.Context().Done())},
		caseRequest:    {Dir: reflect.SelectRecv, Chan: reflect.ValueOf(reqs)},
	}
	for {
		var err error
		if st.other == 0 {
			err = st.next(a.ctx.Done(), s.Context().Done(), reqs)
		} else {
			err = st.nextReflect()
		}
		if err != nil {
			if errors.Is(err, errStreamEnded) {
				return nil
			}
			return err
		}
	}
}

// errStreamEnded ends a stream's loop without an error.
var errStreamEnded = errors.New("stream ended")

// next waits for the server or the stream to end, a request, or a
// response for a watch of a known type (LDS, CDS, EDS, RDS, SDS), and
// handles it.
func (st *sotwStream) next(serverDone, streamDone <-chan struct{}, reqs <-chan *discovery.DiscoveryRequest) error {
	var resp cachev3.Response
	var ok bool
	select {
	case <-serverDone:
		return errStreamEnded
	case <-streamDone:
		return errStreamEnded
	case req, open := <-reqs:
		if !open {
			return errStreamEnded // the client closed the stream or it failed
		}
		return st.request(req)
	case resp, ok = <-st.known[0]:
	case resp, ok = <-st.known[1]:
	case resp, ok = <-st.known[2]:
	case resp, ok = <-st.known[3]:
	case resp, ok = <-st.known[4]:
	}
	return st.response(resp, ok)
}

// nextReflect is next over every watch's channel, for a stream that
// watches a type next does not cover.
func (st *sotwStream) nextReflect() error {
	i, v, ok := reflect.Select(st.cases)
	switch i {
	case caseServerDone, caseStreamDone:
		return errStreamEnded
	case caseRequest:
		if !ok {
			return errStreamEnded
		}
		return st.request(v.Interface().(*discovery.DiscoveryRequest))
	}
	var resp cachev3.Response
	if ok && !v.IsNil() {
		resp = v.Interface().(cachev3.Response)
	}
	return st.response(resp, ok)
}

// response sends a watch's response (ok false: its channel was closed).
func (st *sotwStream) response(resp cachev3.Response, ok bool) error {
	if !ok || resp == nil {
		return status.Error(codes.Unavailable, "xds: a watch closed its channel")
	}
	return st.send(resp)
}

// request handles one request: the callbacks see it first (ACK and NACK
// bookkeeping), then, unless its nonce is stale, the type's watch is
// replaced by one for the request.
func (st *sotwStream) request(req *discovery.DiscoveryRequest) error {
	if req == nil {
		return status.Error(codes.Unavailable, "empty request")
	}
	// Only the first request need carry the node.
	if req.GetNode() != nil {
		st.node = req.GetNode()
	} else {
		req.Node = st.node
	}
	if req.GetTypeUrl() == "" {
		return status.Error(codes.InvalidArgument, "type URL is required for ADS")
	}
	if isDebugType(req.GetTypeUrl()) {
		return st.debug(req) // before the tracker: a debug client is no proxy
	}
	if st.debugOnly {
		return errDebugOnly
	}
	if err := st.a.cb.OnStreamRequest(st.id, req); err != nil {
		return err
	}
	typeURL := req.GetTypeUrl()
	if st.a.cb.s.secretsRefused(st.stream.Context(), typeURL, st.node.GetId()) {
		return nil // sdsauth.go: no watch, nothing sent
	}
	w := st.watches[typeURL]
	if w != nil {
		if w.nonce != "" && req.GetResponseNonce() != w.nonce {
			return nil // answers a response the client has since been sent another of (xDS protocol: ignore)
		}
		w.cancel()
		w.sub.set(req.GetResourceNames())
	} else {
		w = &sotwWatch{sub: newSotwSubscription(req.GetResourceNames()), sel: len(st.cases), known: knownIndex(typeURL)}
		st.watches[typeURL] = w
		st.cases = append(st.cases, reflect.SelectCase{Dir: reflect.SelectRecv})
		if w.known < 0 {
			st.other++
		}
	}
	// A new channel (whatever the old watch sent is dropped) and no nonce
	// until the next response, as go-control-plane: a request following an
	// accepted one is not compared with the response before it.
	w.ch, w.nonce = make(chan cachev3.Response, 1), ""
	cancel, err := st.a.cache.CreateWatch(req, w.sub, w.ch)
	if err != nil {
		return status.Errorf(codes.Unavailable, "xds: watching %s: %v", typeURL, err)
	}
	w.cancel = cancel
	st.cases[w.sel].Chan = reflect.ValueOf(w.ch) // the old channel's case, replaced in place
	if w.known >= 0 {
		st.known[w.known] = w.ch
	}
	return nil
}

// send sends a cache's response with the stream's next nonce.
func (st *sotwStream) send(resp cachev3.Response) error {
	out, err := resp.GetDiscoveryResponse()
	if err != nil {
		return err
	}
	typeURL := resp.GetRequest().GetTypeUrl()
	w := st.watches[typeURL]
	if w == nil {
		return errors.New("xds: a response for a type not watched: " + typeURL)
	}
	st.nonce++
	out.Nonce = strconv.FormatInt(st.nonce, 10)
	w.sub.returned = resp.GetReturnedResources()
	w.nonce = out.Nonce
	if r, ok := resp.(*sharedResponse); ok && r.entries != nil {
		enc := &encodedResponse{DiscoveryResponse: out, entries: r.entries}
		st.a.cb.sotwResponse(st.id, out, enc.size())
		return st.stream.SendMsg(enc)
	}
	st.a.cb.OnStreamResponse(resp.GetContext(), st.id, resp.GetRequest(), out)
	return st.stream.Send(out)
}

// shutdown cancels the stream's watches and reports it closed.
func (st *sotwStream) shutdown() {
	for _, w := range st.watches {
		if w.cancel != nil {
			w.cancel()
		}
	}
	st.a.cb.OnStreamClosed(st.id, st.node)
}
