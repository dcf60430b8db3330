package xds

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshd/meshd/internal/protoutil"
)

// sharedCache serves listeners, routes and clusters to state-of-the-world
// streams. Each scope's resources are marshalled once, when the scope is
// published, and every stream of the scope is sent the same bytes — and a
// resource value shared by several scopes (translate's views) is marshalled
// once per push for all of them. go-control-plane's snapshot cache would
// marshal (and keep) a copy per stream.
//
// Per stream and type it answers as go-control-plane's LinearCache does:
// a wildcard (Envoy's LDS and CDS) gets everything when the type's version
// (a content hash) differs from the one the request carries; a named
// subscription (gRPC's listeners and clusters, RDS) gets an answer when one
// of its resources is new to it or changed, and for listeners and clusters
// also when one it holds is gone. A reconnecting wildcard stream that holds
// the current version is sent nothing.
type sharedCache struct {
	hash cachev3.NodeHash

	mu     sync.Mutex
	scopes map[string]*sharedScope
	nextID int64
}

type sharedScope struct {
	types   map[string]*published // by type URL; nil until the scope is published
	watches map[int64]*sharedWatch
}

// published is one type's resources of one scope, marshalled.
type published struct {
	version string
	names   []string     // sorted
	ms      []marshalled // in the order of names
	// anys and entries are ms' wire forms: every wildcard response
	// shares them.
	anys    []*anypb.Any
	entries []mem.Buffer
}

// get returns the named resource (binary search: no map per scope and type).
func (p *published) get(name string) (marshalled, bool) {
	i, ok := slices.BinarySearch(p.names, name)
	if !ok {
		return nil, false
	}
	return p.ms[i], true
}

// marshalled is a resource's wire forms and content hash (encodeEntry):
// the hex SHA-256 of its encoding, as go-control-plane's HashResource. The
// hash is each delta Resource's version (delta.go), the same in every
// process, so a proxy reconnecting with the versions it holds is sent
// nothing it has. It is shared, by pointer, by every scope and stream
// that serves the resource (a scope's publication is a slice of them),
// and never altered.
type marshalled = *wire

// wire is what marshalled points to.
type wire struct {
	any   *anypb.Any
	hash  string
	entry mem.Buffer // DiscoveryResponse.resources field
	delta mem.Buffer // DeltaDiscoveryResponse.resources field; entry is its tail
}

type sharedWatch struct {
	req *cachev3.Request
	sub cachev3.Subscription
	ch  chan cachev3.Response
}

func newSharedCache(hash cachev3.NodeHash) *sharedCache {
	return &sharedCache{hash: hash, scopes: map[string]*sharedScope{}}
}

// marshal returns r's wire form and hash, from memo when r was marshalled
// before in this push. The value is encoded in place in the resource's
// entry (newMarshalled), not copied there.
func marshal(memo *wireMemo, typeURL string, r types.Resource) (marshalled, error) {
	if v, ok := memo.load(r); ok {
		return v.(marshalled), nil
	}
	var m marshalled
	var err error
	if rc, ok := r.(*route.RouteConfiguration); ok && memo != nil {
		var head []byte
		var parts [][]byte
		var size int
		if head, parts, size, err = routeParts(memo, rc); err == nil {
			m, err = encodeEntry(typeURL, rc.GetName(), size, func(b []byte) ([]byte, error) { return appendRoutes(b, head, parts), nil })
		}
	} else {
		size := deterministic.Size(r)
		m, err = encodeEntry(typeURL, cachev3.GetResourceName(r), size, func(b []byte) ([]byte, error) { return sizeCached.MarshalAppend(b, r) })
	}
	if err != nil {
		return nil, err
	}
	memo.store(r, m)
	return m, nil
}

// sizeCached encodes a message deterministically with the sizes the Size
// call just before it cached in the message.
var sizeCached = proto.MarshalOptions{Deterministic: true, UseCachedSize: true}

// virtualHostsField is RouteConfiguration.virtual_hosts.
const virtualHostsField = 2

// marshalRoutes encodes a route configuration as its other fields, then
// each virtual host, encoded once per memo: the route configurations of
// a push's views share most of their virtual hosts (translate's
// sharedValues). Protobuf accepts fields in any order, so this is the
// message, and it is as deterministic as the encoding of its parts.
func marshalRoutes(memo *wireMemo, rc *route.RouteConfiguration) ([]byte, error) {
	head, parts, size, err := routeParts(memo, rc)
	if err != nil {
		return nil, err
	}
	return appendRoutes(make([]byte, 0, size), head, parts), nil
}

// routeParts returns marshalRoutes' pieces and their encoded size.
func routeParts(memo *wireMemo, rc *route.RouteConfiguration) (head []byte, parts [][]byte, size int, err error) {
	head, err = deterministic.Marshal(protoutil.Without(rc, virtualHostsField))
	if err != nil {
		return nil, nil, 0, err
	}
	parts = make([][]byte, len(rc.GetVirtualHosts()))
	size = len(head)
	for i, vh := range rc.GetVirtualHosts() {
		if v, ok := memo.load(vh); ok {
			parts[i] = v.([]byte)
		} else {
			b, err := deterministic.Marshal(vh)
			if err != nil {
				return nil, nil, 0, err
			}
			memo.store(vh, b)
			parts[i] = b
		}
		size += protowire.SizeTag(virtualHostsField) + protowire.SizeBytes(len(parts[i]))
	}
	return head, parts, size, nil
}

// appendRoutes appends the encoding routeParts described.
func appendRoutes(b, head []byte, parts [][]byte) []byte {
	b = append(b, head...)
	for _, p := range parts {
		b = protowire.AppendTag(b, virtualHostsField, protowire.BytesType)
		b = protowire.AppendBytes(b, p)
	}
	return b
}

// publish makes the scope's resources of w's type current and answers the
// watches they concern.
func (c *sharedCache) publish(scope string, w typeWire) {
	p := &published{version: w.version, names: w.names, ms: w.ms, anys: w.anys, entries: w.entries}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.scope(scope)
	st.types[w.typeURL] = p
	for id, sw := range st.watches {
		if sw.req.GetTypeUrl() == w.typeURL && c.answer(sw, p) {
			delete(st.watches, id)
		}
	}
}

// clear forgets a scope no stream uses any more.
func (c *sharedCache) clear(scope string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.scopes[scope]; ok && len(st.watches) == 0 {
		delete(c.scopes, scope)
	}
}

func (c *sharedCache) scope(key string) *sharedScope {
	st, ok := c.scopes[key]
	if !ok {
		st = &sharedScope{types: map[string]*published{}, watches: map[int64]*sharedWatch{}}
		c.scopes[key] = st
	}
	return st
}

// CreateWatch answers at once when the stream lacks something, else waits
// for the scope's next publication.
func (c *sharedCache) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, ch chan cachev3.Response) (func(), error) {
	key := c.hash.ID(req.GetNode())
	w := &sharedWatch{req: req, sub: sub, ch: ch}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.scope(key)
	if p := st.types[req.GetTypeUrl()]; p != nil && c.answer(w, p) {
		return func() {}, nil
	}
	c.nextID++
	id := c.nextID
	st.watches[id] = w
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if st, ok := c.scopes[key]; ok {
			delete(st.watches, id)
			if len(st.watches) == 0 && len(st.types) == 0 {
				delete(c.scopes, key) // nothing published: nothing to keep
			}
		}
	}, nil
}

// answer sends w a response if it lacks something of p and reports whether
// it did. The stream's channel holds one response per type, and a watch is
// answered at most once, so the send never blocks. c.mu is held.
func (c *sharedCache) answer(w *sharedWatch, p *published) bool {
	typeURL := w.req.GetTypeUrl()
	full := cachev3.ResourceRequiresFullStateInSotw(typeURL)
	returned := w.sub.ReturnedResources()
	var send []string
	if w.sub.IsWildcard() {
		// Answered by version alone, with the shared list: no record of
		// what the stream holds is needed (nor a map of every resource).
		if w.req.GetVersionInfo() == p.version {
			return false
		}
		w.ch <- &sharedResponse{req: w.req, version: p.version, anys: p.anys, entries: p.entries}
		return true
	}
	first := w.req.GetVersionInfo() == ""
	if len(returned) == 0 && !first && w.req.GetVersionInfo() == p.version {
		// A new stream (nothing sent on it yet) whose client holds the
		// current version — it reconnected, to a restarted meshd or to
		// another replica: versions are content hashes of the type's
		// resources in the scope, so it holds what would be sent. Nothing
		// is; the next change answers it (with every name it subscribes
		// to, this stream not knowing which it holds).
		return false
	}
	wanted := slices.Sorted(maps.Keys(w.sub.SubscribedResources()))
	changed, gone := false, false
	var present, absent []string
	for _, n := range wanted {
		m, ok := p.get(n)
		if !ok {
			// For listeners and clusters, a name subscribed but absent is
			// kept in returned with no hash once a response told the client
			// so; one not yet told (newly subscribed, or held and now
			// removed) needs a response.
			v, told := returned[n]
			gone = gone || !told || v != ""
			absent = append(absent, n)
			continue
		}
		present = append(present, n)
		if returned[n] != m.hash {
			changed = true
			if !full && !first {
				send = append(send, n) // RDS: only what changed
			}
		}
	}
	for n := range returned {
		if _, still := w.sub.SubscribedResources()[n]; !still {
			gone = true
		}
	}
	if !first && !changed && !(full && gone) {
		return false
	}
	if full || first {
		send = present
	}
	next := make(map[string]string, len(send))
	for n, v := range returned {
		if _, ok := p.get(n); ok {
			if _, sub := w.sub.SubscribedResources()[n]; sub {
				next[n] = v
			}
		}
	}
	if full {
		for _, n := range absent {
			next[n] = "" // told absent: not answered again until it appears
		}
	}
	anys, entries := make([]*anypb.Any, len(send)), make([]mem.Buffer, len(send))
	for i, n := range send {
		m, _ := p.get(n)
		anys[i], entries[i] = m.any, m.entry
		next[n] = m.hash
	}
	w.ch <- &sharedResponse{req: w.req, version: p.version, anys: anys, entries: entries, returned: next}
	return true
}

// CreateDeltaWatch is not served here: delta streams have their own loop
// (delta.go).
func (c *sharedCache) CreateDeltaWatch(*cachev3.DeltaRequest, cachev3.Subscription, chan cachev3.DeltaResponse) (func(), error) {
	return nil, errors.New("sharedCache serves state-of-the-world streams only")
}

// Fetch is not supported: meshd serves ADS only.
func (c *sharedCache) Fetch(context.Context, *cachev3.Request) (cachev3.Response, error) {
	return nil, errors.New("meshd serves ADS only")
}

// sharedResponse hands every stream its own DiscoveryResponse (the server
// sets the nonce on it) over the shared marshalled resources; entries are
// their encodings (nil: none), which the stream sends (encodedResponse).
type sharedResponse struct {
	req      *cachev3.Request
	version  string
	anys     []*anypb.Any
	entries  []mem.Buffer
	returned map[string]string
}

func (r *sharedResponse) GetDiscoveryResponse() (*discovery.DiscoveryResponse, error) {
	return &discovery.DiscoveryResponse{VersionInfo: r.version, Resources: r.anys, TypeUrl: r.req.GetTypeUrl()}, nil
}
func (r *sharedResponse) GetRequest() *discovery.DiscoveryRequest { return r.req }
func (r *sharedResponse) GetVersion() (string, error)             { return r.version, nil }
func (r *sharedResponse) GetResponseVersion() string              { return r.version }
func (r *sharedResponse) GetReturnedResources() map[string]string { return r.returned }
func (r *sharedResponse) GetContext() context.Context             { return context.Background() }
