package xds

import (
	"runtime"
	"slices"
	"strconv"
	"sync"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Delta (incremental) ADS streams, on meshd's own loop over the same
// shared machinery as state-of-the-world streams: the scope's published
// resources (sharedCache, marshalled once per push and shared by every
// stream) and the mesh-wide assignments (deltaEDS). A stream keeps, per
// type, what it subscribes to and what the client holds (deltaType): for
// a wildcard, the publication it was last sent in full; for EDS, a
// generation of the assignments (edsSub); for names subscribed, their
// content hashes. When its scope publishes, when endpoints change, or when
// a request changes its subscription, it sends only the resources whose
// hash differs from the client's, and the names of those the client holds
// that are gone (removed_resources). Responses reference the resources'
// shared encodings (deltaOut): no snapshot, no marshalled copy per stream.

// deltaHub wakes the delta streams of a scope when it is published.
type deltaHub struct {
	mu     sync.Mutex
	scopes map[string]map[*deltaStream]struct{}
}

func newDeltaHub() *deltaHub { return &deltaHub{scopes: map[string]map[*deltaStream]struct{}{}} }

// watch registers st for its scope's publications; the function returned
// unregisters it.
func (h *deltaHub) watch(scope string, st *deltaStream) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.scopes[scope]
	if m == nil {
		m = map[*deltaStream]struct{}{}
		h.scopes[scope] = m
	}
	m[st] = struct{}{}
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.scopes[scope], st)
		if len(h.scopes[scope]) == 0 {
			delete(h.scopes, scope)
		}
	}
}

// wake wakes the delta streams of scope.
func (h *deltaHub) wake(scope string) {
	h.mu.Lock()
	wake := make([]*deltaStream, 0, len(h.scopes[scope]))
	for st := range h.scopes[scope] {
		wake = append(wake, st)
	}
	h.mu.Unlock()
	for i, st := range wake {
		signal(st.scopeWake)
		if (i+1)%deltaFanOutChunk == 0 {
			runtime.Gosched()
		}
	}
}

// signal wakes a one-slot channel's reader without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// publishedType returns the scope's current publication of typeURL, nil
// if none.
func (c *sharedCache) publishedType(scope, typeURL string) *published {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.scopes[scope]; ok {
		return st.types[typeURL]
	}
	return nil
}

// deltaStream is one delta stream's state, owned by its loop.
type deltaStream struct {
	a      *adsServer
	id     int64
	stream discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesServer
	node   *core.Node
	nonce  int64
	scope  string // bound on the first config request
	types  map[string]*deltaType
	// scopeWake and edsWake are signalled by deltaHub and deltaEDS.
	scopeWake, edsWake chan struct{}
	unwatch            []func()
	debugOnly          bool
}

// wakeEDS signals an endpoint change.
func (st *deltaStream) wakeEDS() { signal(st.edsWake) }

// deltaScopeOrder is the order a scope's types are sent in when it is
// published: clusters (and secrets) before the listeners that use them,
// listeners before their routes.
var deltaScopeOrder = [...]string{resourcev3.ClusterType, resourcev3.SecretType, resourcev3.ListenerType, resourcev3.RouteType}

// serveDelta serves a delta stream.
func (a *adsServer) serveDelta(s discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	st := &deltaStream{a: a, id: a.ids.Add(1), stream: s, node: &core.Node{}, types: map[string]*deltaType{},
		scopeWake: make(chan struct{}, 1), edsWake: make(chan struct{}, 1)}
	defer st.shutdown()
	if err := a.cb.OnDeltaStreamOpen(s.Context(), st.id, resourcev3.AnyType); err != nil {
		return err
	}
	reqs := receive(a, s.Context(), func() (*discovery.DeltaDiscoveryRequest, error) { return s.Recv() })
	for {
		var err error
		select {
		case <-a.ctx.Done():
			return nil
		case <-s.Context().Done():
			return nil
		case req, ok := <-reqs:
			if !ok {
				return nil // the client closed the stream or it failed
			}
			err = st.request(req)
		case <-st.scopeWake:
			err = st.published()
		case <-st.edsWake:
			err = st.endpoints(nil)
		}
		if err != nil {
			return err
		}
	}
}

// request handles one request: debug requests are answered; the tracker
// sees the others first (binding, ACK and NACK bookkeeping); then the
// type's subscription is updated and what it lacks is sent.
func (st *deltaStream) request(req *discovery.DeltaDiscoveryRequest) error {
	if req.GetNode() != nil {
		st.node = req.GetNode()
	} else {
		req.Node = st.node
	}
	typeURL := req.GetTypeUrl()
	if typeURL == "" {
		return status.Error(codes.InvalidArgument, "type URL is required for ADS")
	}
	if isDebugType(typeURL) {
		return st.debug(req) // before the tracker: a debug client is no proxy
	}
	if st.debugOnly {
		return errDebugOnly
	}
	s := st.a.cb.s
	if s.secretsRefused(st.stream.Context(), typeURL, st.node.GetId()) {
		return nil // sdsauth.go: no subscription, nothing sent
	}
	if err := st.a.cb.OnStreamDeltaRequest(st.id, req); err != nil {
		return err
	}
	if st.scope == "" {
		st.bind()
	}
	t := st.types[typeURL]
	first := t == nil
	if first {
		t = newDeltaType(typeURL)
		st.types[typeURL] = t
	}
	added, full := t.apply(req, first)
	if typeURL == resourcev3.EndpointType {
		return st.endpoints(added)
	}
	p := s.shared.publishedType(st.scope, typeURL)
	if p == nil && !isScopeType(typeURL) {
		// A type meshd serves nothing of: a wildcard is answered, empty.
		return st.respond(t, "", nil, nil)
	}
	if p == nil {
		return nil // not published yet: published() answers
	}
	if t.pub == nil || t.pub.version != p.version {
		full = true // new content (versions are content hashes)
	}
	t.pub = p
	send, removed := t.diff(p, added, full)
	return st.respond(t, p.version, send, removed)
}

// isScopeType reports whether typeURL is published per scope.
func isScopeType(typeURL string) bool {
	return slices.Contains(deltaScopeOrder[:], typeURL)
}

// bind registers the stream for its scope's publications and endpoint
// changes, once its first config request bound it (the tracker built the
// scope).
func (st *deltaStream) bind() {
	st.scope = scopeHash{}.ID(st.node)
	s := st.a.cb.s
	st.unwatch = append(st.unwatch, s.deltas.watch(st.scope, st), s.eds.delta.watch(st))
}

// published sends what the scope's new publication changed for each
// type the stream subscribes to.
func (st *deltaStream) published() error {
	for _, typeURL := range deltaScopeOrder {
		t := st.types[typeURL]
		if t == nil {
			continue
		}
		p := st.a.cb.s.shared.publishedType(st.scope, typeURL)
		if p == nil || p == t.pub {
			continue
		}
		same := t.pub != nil && t.pub.version == p.version
		t.pub = p
		if same {
			continue // republished unchanged (another type of the scope changed)
		}
		send, removed := t.diff(p, nil, true)
		if err := st.respond(t, p.version, send, removed); err != nil {
			return err
		}
	}
	return nil
}

// endpoints sends the assignments the stream lacks (edsSub.sync): those
// changed since it last looked and the names added (newly subscribed).
func (st *deltaStream) endpoints(added []string) error {
	t := st.types[resourcev3.EndpointType]
	if t == nil {
		return nil
	}
	e := st.a.cb.s.eds.delta
	e.mu.RLock()
	if !e.primed {
		e.mu.RUnlock()
		return nil // answered when the first push's assignments are in (prime wakes it)
	}
	send, removed := t.eds.sync(e, added)
	version := "eds-" + strconv.FormatUint(e.gen, 10)
	e.mu.RUnlock()
	return st.respond(t, version, send, removed)
}

// respond sends a type's changes, if any (or the answer its first
// wildcard request is owed), with the stream's next nonce.
func (st *deltaStream) respond(t *deltaType, version string, send []marshalled, removed []string) error {
	if len(send) == 0 && len(removed) == 0 && !t.answerFirst {
		return nil
	}
	t.answerFirst = false
	st.nonce++
	out := &deltaOut{version: version, typeURL: t.typeURL, nonce: strconv.FormatInt(st.nonce, 10), res: send, removed: removed}
	size, err := out.encodeHead()
	if err != nil {
		return err
	}
	st.a.cb.deltaResponse(st.id, t.typeURL, version, out.nonce, len(send), size)
	return st.stream.SendMsg(out)
}

// debug answers a delta debug request: its subscribed name. A request
// subscribing nothing that carries a nonce is an ACK or NACK.
func (st *deltaStream) debug(req *discovery.DeltaDiscoveryRequest) error {
	if len(st.types) == 0 {
		st.debugOnly = true
	}
	names := req.GetResourceNamesSubscribe()
	if len(names) == 0 && req.GetResponseNonce() != "" {
		return nil
	}
	res, err := st.a.cb.s.answerDebug(debugRequest{ctx: st.stream.Context(), typeURL: req.GetTypeUrl(), names: names, node: st.node.GetId()})
	if err != nil {
		return err
	}
	st.nonce++
	nonce := strconv.FormatInt(st.nonce, 10)
	name := ""
	if len(names) > 0 {
		name = names[0]
	}
	return st.stream.Send(&discovery.DeltaDiscoveryResponse{TypeUrl: DebugType, SystemVersionInfo: nonce, Nonce: nonce,
		Resources: []*discovery.Resource{{Name: name, Version: nonce, Resource: res}}})
}

// shutdown unregisters the stream and reports it closed.
func (st *deltaStream) shutdown() {
	for _, f := range st.unwatch {
		f()
	}
	st.a.cb.OnDeltaStreamClosed(st.id, st.node)
}
