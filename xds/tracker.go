package xds

import (
	"context"
	"sort"
	"sync"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/internal/ca"
	"github.com/meshd/meshd/internal/model"
)

// TypeStatus is what one proxy was sent and acknowledged for one xDS type.
type TypeStatus struct {
	SentVersion   string    `json:"sentVersion,omitempty"`
	SentNonce     string    `json:"sentNonce,omitempty"`
	SentAt        time.Time `json:"sentAt,omitzero"`
	SentResources int       `json:"sentResources"`
	// Responses counts every response of the type sent on the stream.
	Responses    int       `json:"responses"`
	AckedVersion string    `json:"ackedVersion,omitempty"`
	AckedNonce   string    `json:"ackedNonce,omitempty"`
	AckedAt      time.Time `json:"ackedAt,omitzero"`
	Nacks        int       `json:"nacks,omitempty"`
	LastNack     string    `json:"lastNack,omitempty"`

	// origin is when the providers saw the change the last response
	// carries (zero if it carries none, e.g. the first response of a
	// stream); cleared once its propagation time is observed.
	origin time.Time
	// attributed is the last push origin a response of this type was
	// attributed to: each push is measured once per proxy and type.
	attributed time.Time
}

// maxPropagation bounds what is attributed to a push: a response sent
// longer than this after the change was seen answers something else (a new
// subscription), not that change.
const maxPropagation = time.Minute

// Synced reports whether the last response sent was acknowledged.
func (t TypeStatus) Synced() bool { return t.SentNonce != "" && t.SentNonce == t.AckedNonce }

// ProxyStatus describes one connected xDS stream.
type ProxyStatus struct {
	NodeID    string `json:"proxy"`
	ID        string `json:"id"`
	Namespace string `json:"namespace"`
	Scope     string `json:"scope"`
	Delta     bool   `json:"delta"`
	// Identity is the SPIFFE ID the stream authenticated as on the secure
	// port; empty for the plaintext port.
	Identity    string                `json:"identity,omitempty"`
	ConnectedAt time.Time             `json:"connectedAt"`
	Types       map[string]TypeStatus `json:"types"` // by short type: cds, eds, lds, rds, sds
}

type streamKey struct {
	delta bool
	id    int64
}

type streamState struct {
	proxy *model.Proxy
	// node is the node the stream was opened with; later requests that
	// carry the same one are not checked again.
	node      *core.Node
	identity  string
	connected time.Time
	types     map[string]*TypeStatus // by type URL
}

// tracker implements go-control-plane's server callbacks, which meshd's
// own stream loops call (sotw.go, delta.go): it binds each stream to its
// proxy and scope, records sends and ACKs, and handles NACKs.
type tracker struct {
	s       *Server
	mu      sync.Mutex
	streams map[streamKey]*streamState
	// idents holds the authenticated identity of each secure-port stream,
	// from its opening until it closes.
	idents map[streamKey]ca.Identity
}

func newTracker(s *Server) *tracker {
	return &tracker{s: s, streams: map[streamKey]*streamState{}, idents: map[streamKey]ca.Identity{}}
}

// scopeHash keys the shared caches by proxy scope, so that every proxy of
// a scope shares one snapshot.
type scopeHash struct{}

// ID returns the scope key of the node ("invalid" for unparsable nodes, which
// the tracker refuses before any watch is created).
func (scopeHash) ID(node *core.Node) string {
	p, err := parseNode(node)
	if err != nil {
		return "invalid"
	}
	return p.Scope().Key()
}

func parseNode(node *core.Node) (*model.Proxy, error) {
	return model.ParseProxy(node.GetId(), node.GetMetadata().AsMap())
}

// open registers the stream's proxy on its first request. On an
// authenticated stream every node it is sent (the first, and any later
// request carrying another) must match the stream's identity, or the stream
// is refused with PermissionDenied before anything is watched.
func (t *tracker) open(key streamKey, node *core.Node) error {
	t.mu.Lock()
	st, ok := t.streams[key]
	id, authed := t.idents[key]
	t.mu.Unlock()
	if ok && (!authed || node == nil || node == st.node) {
		return nil
	}
	p, err := parseNode(node)
	if err != nil {
		t.s.log.Warn("refusing xDS stream", "node", node.GetId(), "error", err)
		return status.Errorf(codes.InvalidArgument, "meshd: %v", err)
	}
	if authed {
		if reason, err := authorize(p, id); err != nil {
			t.s.m.AuthFailures.WithLabelValues(reason).Inc()
			t.s.log.Warn("refusing xDS stream", "node", p.NodeID, "identity", id.SPIFFEID(), "error", err)
			return status.Errorf(codes.PermissionDenied, "meshd: %v", err)
		}
	}
	if ok {
		return nil // a later node of an authenticated stream, checked
	}
	t.s.acquireScope(p.Scope(), key.delta)
	t.mu.Lock()
	st = &streamState{proxy: p, node: node, connected: time.Now(), types: map[string]*TypeStatus{}}
	if authed {
		st.identity = id.SPIFFEID()
	}
	t.streams[key] = st
	t.mu.Unlock()
	t.s.m.XDSClients.WithLabelValues("meshd").Inc()
	t.s.log.Info("proxy connected", "proxy", p.NodeID, "scope", p.Scope().Key(), "delta", key.delta, "authenticated", authed)
	return nil
}

// opened records the identity a stream authenticated as, if any.
func (t *tracker) opened(ctx context.Context, key streamKey) {
	if id, ok := ca.IdentityFrom(ctx); ok {
		t.mu.Lock()
		t.idents[key] = id
		t.mu.Unlock()
	}
}

func (t *tracker) closed(key streamKey) {
	t.mu.Lock()
	st, ok := t.streams[key]
	delete(t.streams, key)
	delete(t.idents, key)
	t.mu.Unlock()
	if !ok {
		return
	}
	t.s.releaseScope(st.proxy.Scope(), key.delta)
	t.s.m.XDSClients.WithLabelValues("meshd").Dec()
	t.s.log.Info("proxy disconnected", "proxy", st.proxy.NodeID)
}

// request records an ACK or NACK of the previous response of the type. It
// returns the version the proxy was sent when the request is a NACK of it.
// A request that repeats an already acknowledged nonce is a re-request
// (again): Envoy sends one for EDS when CDS updated a cluster, and waits for
// an answer before the cluster leaves warming.
func (t *tracker) request(key streamKey, typeURL, nonce, version string, errDetail *status.Status) (nacked string, isNack, again bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.streams[key]
	if !ok || nonce == "" {
		return "", false, false
	}
	ts := st.types[typeURL]
	if ts == nil || ts.SentNonce != nonce {
		return "", false, false
	}
	if errDetail != nil {
		ts.Nacks++
		ts.LastNack = errDetail.Message()
		t.s.m.Rejects.WithLabelValues(ShortType(typeURL)).Inc()
		t.s.log.Warn("proxy rejected config (NACK)", "proxy", st.proxy.NodeID, "type", ShortType(typeURL),
			"version", ts.SentVersion, "nonce", nonce, "error", errDetail.Message())
		return ts.SentVersion, true, false
	}
	if ts.AckedNonce == nonce {
		return "", false, true
	}
	ts.AckedVersion, ts.AckedNonce, ts.AckedAt = version, nonce, time.Now()
	if ts.AckedVersion == "" {
		ts.AckedVersion = ts.SentVersion
	}
	if !ts.origin.IsZero() {
		t.s.m.Propagation.WithLabelValues(ShortType(typeURL)).Observe(ts.AckedAt.Sub(ts.origin).Seconds())
		ts.origin = time.Time{}
	}
	return "", false, false
}

// response records a response sent. Its origin is the newest push's when the
// stream existed before that push's changes were seen, no earlier response
// of the type was attributed to that push, and the change is less than
// maxPropagation old: the response then carries it (or newer changes).
func (t *tracker) response(key streamKey, typeURL, version, nonce string, n, size int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	st, ok := t.streams[key]
	if !ok {
		return
	}
	ts := st.types[typeURL]
	if ts == nil {
		ts = &TypeStatus{}
		st.types[typeURL] = ts
	}
	ts.SentVersion, ts.SentNonce, ts.SentAt, ts.SentResources = version, nonce, time.Now(), n
	t.s.lastSent.Store(ts.SentAt.UnixNano())
	ts.Responses++
	ts.origin = time.Time{}
	if o := t.s.origin.Load(); o != nil && st.connected.Before(*o) && !o.Equal(ts.attributed) &&
		ts.SentAt.Sub(*o) < maxPropagation {
		ts.origin, ts.attributed = *o, *o
		t.s.m.ConvergenceTime.Observe(ts.SentAt.Sub(*o).Seconds())
	}
	short := ShortType(typeURL)
	t.s.m.Pushes.WithLabelValues(short).Inc()
	t.s.m.ConfigSize.WithLabelValues(short).Observe(float64(size))
}

// snapshot returns the status of every stream, sorted by node ID.
func (t *tracker) snapshot() []ProxyStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ProxyStatus, 0, len(t.streams))
	for key, st := range t.streams {
		ps := ProxyStatus{
			NodeID: st.proxy.NodeID, ID: st.proxy.ID, Namespace: st.proxy.Namespace,
			Scope: st.proxy.Scope().Key(), Delta: key.delta, Identity: st.identity, ConnectedAt: st.connected,
			Types: map[string]TypeStatus{},
		}
		for typeURL, ts := range st.types {
			ps.Types[ShortType(typeURL)] = *ts
		}
		out = append(out, ps)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].NodeID != out[j].NodeID {
			return out[i].NodeID < out[j].NodeID
		}
		return out[i].ConnectedAt.Before(out[j].ConnectedAt)
	})
	return out
}

// OnStreamOpen records the stream's authenticated identity; the proxy is
// bound on its first request.
func (t *tracker) OnStreamOpen(ctx context.Context, id int64, _ string) error {
	t.opened(ctx, streamKey{id: id})
	return nil
}

// OnStreamClosed forgets the stream.
func (t *tracker) OnStreamClosed(id int64, _ *core.Node) { t.closed(streamKey{id: id}) }

// OnStreamRequest binds the stream to its scope and records ACKs and NACKs.
// A NACK's version_info is rewritten to the rejected version, so the cache
// waits for new config instead of resending the rejected one in a loop. An
// EDS re-request (Envoy's, after CDS updated a cluster) has its version
// cleared, so it is answered with the assignments at once, as istiod does,
// instead of leaving the cluster warming until Envoy's fetch timeout.
func (t *tracker) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	key := streamKey{id: id}
	if err := t.open(key, req.GetNode()); err != nil {
		return err
	}
	v, nack, again := t.request(key, req.GetTypeUrl(), req.GetResponseNonce(), req.GetVersionInfo(), errStatus(req.GetErrorDetail()))
	switch {
	case nack:
		req.VersionInfo = v
	case again && req.GetTypeUrl() == resourcev3.EndpointType:
		req.VersionInfo = ""
	}
	return nil
}

// OnStreamResponse records what was sent.
func (t *tracker) OnStreamResponse(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	t.sotwResponse(id, resp, proto.Size(resp))
}

// sotwResponse is OnStreamResponse given the response's encoded size.
func (t *tracker) sotwResponse(id int64, resp *discovery.DiscoveryResponse, size int) {
	t.response(streamKey{id: id}, resp.GetTypeUrl(), resp.GetVersionInfo(), resp.GetNonce(), len(resp.GetResources()), size)
}

// OnDeltaStreamOpen records the stream's authenticated identity.
func (t *tracker) OnDeltaStreamOpen(ctx context.Context, id int64, _ string) error {
	t.opened(ctx, streamKey{delta: true, id: id})
	return nil
}

// OnDeltaStreamClosed forgets the stream.
func (t *tracker) OnDeltaStreamClosed(id int64, _ *core.Node) {
	t.closed(streamKey{delta: true, id: id})
}

// OnStreamDeltaRequest binds the stream to its scope and records ACKs and
// NACKs. A NACK needs nothing more: a delta stream records what it sent
// as held, so the rejected resources are resent only when they change
// (delta.go).
func (t *tracker) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	key := streamKey{delta: true, id: id}
	if err := t.open(key, req.GetNode()); err != nil {
		return err
	}
	_, _, _ = t.request(key, req.GetTypeUrl(), req.GetResponseNonce(), "", errStatus(req.GetErrorDetail()))
	return nil
}

// OnStreamDeltaResponse records what was sent.
func (t *tracker) OnStreamDeltaResponse(id int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	t.deltaResponse(id, resp.GetTypeUrl(), resp.GetSystemVersionInfo(), resp.GetNonce(), len(resp.GetResources()), proto.Size(resp))
}

// deltaResponse records a delta response of typeURL: its version, nonce,
// number of resources and encoded size. A response that only removes
// resources counts as sent too.
func (t *tracker) deltaResponse(id int64, typeURL, version, nonce string, resources, size int) {
	t.response(streamKey{delta: true, id: id}, typeURL, version, nonce, resources, size)
}

// OnFetchRequest refuses REST fetches: meshd serves ADS only.
func (t *tracker) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error {
	return status.Error(codes.Unimplemented, "meshd serves ADS only")
}

// OnFetchResponse implements the server callbacks.
func (t *tracker) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}
