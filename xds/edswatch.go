package xds

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math/rand/v2"
	"runtime"
	"strconv"
	"strings"
	"sync"

	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/anypb"
)

// sotwEDS serves ClusterLoadAssignments to state-of-the-world streams.
//
// A sidecar that sees the whole mesh watches every assignment, and
// acknowledges each response with a new request. go-control-plane's
// LinearCache indexes every watch under every name it subscribes to, so
// each endpoint change costs (watching proxies × names each watches) map
// updates — seconds at 2,000 sidecars and 1,000 services. sotwEDS keeps
// a short log of which names changed in which generation instead, and
// puts the generation and a hash of the subscription in the version it
// sends: a watch is answered by looking up the changed names in its
// subscription, and a request echoing the current version is registered
// without looking at its names. Nothing is kept per stream; assignments are
// marshalled once and shared by every stream.
type sotwEDS struct {
	mu      sync.Mutex
	boot    string // distinguishes this process's versions from another's
	gen     uint64
	items   map[string]edsItem
	changes []genChange // the newest last; at most maxChangeLog
	watches map[int64]*edsWatch
	nextID  int64
}

// edsWatch is a watch with the hash of its subscription, computed once.
type edsWatch struct {
	*sharedWatch
	subs uint64
}

type edsItem struct {
	m   marshalled
	gen uint64 // generation of its last change
}

type genChange struct {
	gen   uint64
	names []string
}

// maxChangeLog bounds the change log; a request older than the log is
// answered by comparing every name it subscribes to.
const maxChangeLog = 512

func newSotwEDS() *sotwEDS {
	return &sotwEDS{boot: strconv.FormatUint(rand.Uint64(), 36), items: map[string]edsItem{}, watches: map[int64]*edsWatch{}}
}

// version names what a stream holds after a response: this process, the
// generation, and a hash of the names it subscribes to. A request echoing
// it with the same subscription lacks only what changed since; no record
// per stream is kept.
func (e *sotwEDS) version(subs uint64) string {
	return fmt.Sprintf("eds-%s-%d-%x", e.boot, e.gen, subs)
}

// parse returns the generation and subscription hash of a version this
// process sent.
func (e *sotwEDS) parse(v string) (gen, subs uint64, ok bool) {
	rest, ok := strings.CutPrefix(v, "eds-"+e.boot+"-")
	if !ok {
		return 0, 0, false
	}
	g, h, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, 0, false
	}
	gen, err1 := strconv.ParseUint(g, 10, 64)
	subs, err2 := strconv.ParseUint(h, 16, 64)
	return gen, subs, err1 == nil && err2 == nil
}

// subsSeed seeds subscription hashes; versions carrying them are only
// understood by this process (see boot).
var subsSeed = maphash.MakeSeed()

// subsHash is an order-independent hash of the names a subscription names.
func subsHash(sub cachev3.Subscription) uint64 {
	if s, ok := sub.(*sotwSubscription); ok {
		return s.namesHash() // once per name set, not per ACK
	}
	if sub.IsWildcard() {
		return 0
	}
	return hashNames(sub.SubscribedResources())
}

// hashNames is an order-independent hash of names.
func hashNames(names map[string]struct{}) uint64 {
	var x uint64
	for n := range names {
		x ^= maphash.String(subsSeed, n)
	}
	return x
}

// update applies changed assignments (marshalled) and removals, and
// answers the watches of the streams that subscribe to one of them.
func (e *sotwEDS) update(ms map[string]marshalled, removed []string) {
	deliver(e.apply(ms, removed))
}

// fanOutChunk is how many streams deliver wakes before it yields.
const fanOutChunk = 64

// deliver hands each answered watch its response, yielding the processor
// after every fanOutChunk. Every stream woken sends at once, and grpc-go's
// writer for its connection, after queueing a small message, yields once
// before writing it, holding a write buffer borrowed from a shared pool
// meanwhile: woken all at once, thousands of streams held thousands of
// buffers (tens of megabytes allocated afresh when a collection had
// emptied the pool — enough to start another collection in the middle of
// the fan-out), and no proxy was written to before every stream had run.
// Yielding per chunk lets each chunk's writers finish first. The sends
// never block: each watch was answered once, on its own one-slot channel,
// and removed from the watches before.
func deliver(out []answered) {
	for i, a := range out {
		a.ch <- a.resp
		if (i+1)%fanOutChunk == 0 {
			runtime.Gosched()
		}
	}
}

// answered is a response for a watch's channel.
type answered struct {
	ch   chan cachev3.Response
	resp cachev3.Response
}

// apply is update's bookkeeping, under e.mu: it returns the responses.
func (e *sotwEDS) apply(ms map[string]marshalled, removed []string) []answered {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.gen++
	names := make([]string, 0, len(ms)+len(removed))
	for name, m := range ms {
		e.items[name] = edsItem{m: m, gen: e.gen}
		names = append(names, name)
	}
	for _, name := range removed {
		delete(e.items, name)
		names = append(names, name)
	}
	e.changes = append(e.changes, genChange{gen: e.gen, names: names})
	if len(e.changes) > maxChangeLog {
		e.changes = e.changes[len(e.changes)-maxChangeLog:]
	}
	var out []answered
	versions := map[uint64]string{} // by subscription hash: most streams share a few
	for id, w := range e.watches {
		if send := e.subscribed(w, names); len(send) > 0 {
			out = append(out, answered{ch: w.ch, resp: e.response(w, send, versions)})
			delete(e.watches, id)
		}
	}
	return out
}

// subscribed returns those of names that w subscribes to and that exist.
func (e *sotwEDS) subscribed(w *edsWatch, names []string) []string {
	var out []string
	subs := w.sub.SubscribedResources()
	for _, n := range names {
		if _, ok := e.items[n]; !ok {
			continue
		}
		if _, ok := subs[n]; ok || w.sub.IsWildcard() {
			out = append(out, n)
		}
	}
	return out
}

// CreateWatch answers at once with what the stream lacks, if anything.
func (e *sotwEDS) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, ch chan cachev3.Response) (func(), error) {
	w := &edsWatch{sharedWatch: &sharedWatch{req: req, sub: sub, ch: ch}, subs: subsHash(sub)}
	e.mu.Lock()
	defer e.mu.Unlock()
	if send, ok := e.missing(w); ok || len(send) > 0 {
		e.respond(w, send)
		return func() {}, nil
	}
	e.nextID++
	id := e.nextID
	e.watches[id] = w
	return func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(e.watches, id)
	}, nil
}

// missing returns the names w should be sent now, and whether to answer
// even with none (a stream's first request, or one whose subscription
// changed). e.mu is held.
func (e *sotwEDS) missing(w *edsWatch) ([]string, bool) {
	subs := w.sub.SubscribedResources()
	if g, h, ok := e.parse(w.req.GetVersionInfo()); ok && h == w.subs {
		// The stream holds everything it subscribes to as of generation g:
		// it lacks only what changed since.
		if g == e.gen {
			return nil, false
		}
		if len(e.changes) > 0 && e.changes[0].gen <= g+1 {
			seen := map[string]bool{}
			var send []string
			for _, c := range e.changes {
				if c.gen <= g {
					continue
				}
				for _, n := range c.names {
					if _, sub := subs[n]; (sub || w.sub.IsWildcard()) && !seen[n] {
						if _, ok := e.items[n]; ok {
							seen[n] = true
							send = append(send, n)
						}
					}
				}
			}
			return send, false
		}
	}
	// A new stream, a changed subscription or a version older than the
	// change log: everything it subscribes to.
	var send []string
	if w.sub.IsWildcard() {
		for n := range e.items {
			send = append(send, n)
		}
	} else {
		for n := range subs {
			if _, ok := e.items[n]; ok {
				send = append(send, n)
			}
		}
	}
	return send, true
}

// respond sends w the named assignments. e.mu is held; the stream's channel
// holds one response per type, so this never blocks.
func (e *sotwEDS) respond(w *edsWatch, send []string) {
	w.ch <- e.response(w, send, nil)
}

// response is w's response with the named assignments, its version from
// versions when there (nil: none kept). e.mu is held.
func (e *sotwEDS) response(w *edsWatch, send []string, versions map[uint64]string) *sharedResponse {
	anys, entries := make([]*anypb.Any, 0, len(send)), make([]mem.Buffer, 0, len(send))
	for _, n := range send {
		m := e.items[n].m
		anys, entries = append(anys, m.any), append(entries, m.entry)
	}
	v, ok := versions[w.subs]
	if !ok {
		v = e.version(w.subs)
		if versions != nil {
			versions[w.subs] = v
		}
	}
	return &sharedResponse{req: w.req, version: v, anys: anys, entries: entries}
}

// CreateDeltaWatch is not served here: delta streams use the LinearCache.
func (e *sotwEDS) CreateDeltaWatch(*cachev3.DeltaRequest, cachev3.Subscription, chan cachev3.DeltaResponse) (func(), error) {
	return nil, errors.New("sotwEDS serves state-of-the-world streams only")
}

// Fetch is not supported: meshd serves ADS only.
func (e *sotwEDS) Fetch(context.Context, *cachev3.Request) (cachev3.Response, error) {
	return nil, errors.New("meshd serves ADS only")
}
