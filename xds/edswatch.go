package xds

import (
	"context"
	"errors"
	"hash/maphash"
	"runtime"
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
// a short log of which names changed in which generation instead: a watch
// is answered by looking up the changed names in its subscription, and a
// request echoing the current version is registered without looking at
// its names. Nothing is kept per stream; assignments are marshalled once
// and shared by every stream.
//
// The version a response carries is a content hash of what the stream
// holds once it applied the response: every assignment it subscribes to,
// not only those the response carries (edsVersion). So two replicas, or
// a restarted meshd, give a subscription the same version for the same
// assignments, and a proxy reconnecting with the version it holds and the
// same subscription is sent nothing. Internally the content hash of each
// subscription is kept per generation (sums), updated from the change log,
// and the generations at which each version was sent are remembered
// (issued), so that an acknowledgement echoing a version that changes
// have overtaken is sent only what changed since.
type sotwEDS struct {
	mu      sync.Mutex
	gen     uint64
	items   map[string]edsItem
	changes []genChange // the newest last; at most maxChangeLog
	watches map[int64]*edsWatch
	nextID  int64
	// all is the content hash of every assignment: a wildcard's.
	all uint64
	// sums is the content hash per subscription (by subsHash), as of a
	// generation; issued the newest generation at which a content hash was
	// a subscription's. Both are forgotten once older than the change log.
	sums   map[uint64]subsSum
	issued map[issueKey]uint64
}

// edsWatch is a watch with the hash of its subscription, computed once.
// early is set on a watch opened before the first update (meshd still
// syncing): the first update answers it as CreateWatch would have.
type edsWatch struct {
	*sharedWatch
	subs  uint64
	early bool
}

type edsItem struct {
	m    marshalled
	gen  uint64 // generation of its last change
	term uint64 // edsTerm of its name and content hash
}

// genChange is one generation's changed names, with what each changed in
// the content hash of a subscription holding it (old term ^ new term).
type genChange struct {
	gen    uint64
	names  []string
	deltas []uint64
}

// subsSum is a subscription's content hash as of a generation.
type subsSum struct {
	gen uint64
	sum uint64
}

// issueKey is a content hash sent to streams with a subscription.
type issueKey struct {
	sum, subs uint64
}

// maxChangeLog bounds the change log; a request older than the log is
// answered by comparing every name it subscribes to.
const maxChangeLog = 512

func newSotwEDS() *sotwEDS {
	return &sotwEDS{items: map[string]edsItem{}, watches: map[int64]*edsWatch{},
		sums: map[uint64]subsSum{}, issued: map[issueKey]uint64{}}
}

// version names what a stream with an explicit subscription hashing to
// subs holds after a response: the content hash of the assignments it
// subscribes to, as of the generation contentSum last computed it for subs
// (a wildcard's is edsVersion(e.all)). e.mu is held.
func (e *sotwEDS) version(subs uint64) string {
	return edsVersion(e.sums[subs].sum)
}

// subsSeed seeds subscription hashes. They key this process's memos only:
// versions do not carry them.
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

// contentSum returns the content hash of what w subscribes to, as of the
// current generation: from the memo of its subscription, brought up to
// date through the change log, or computed afresh. e.mu is held.
func (e *sotwEDS) contentSum(w *edsWatch) uint64 {
	if w.sub.IsWildcard() {
		return e.all
	}
	subs := w.sub.SubscribedResources()
	s, ok := e.sums[w.subs]
	switch {
	case ok && s.gen == e.gen:
		return s.sum
	case ok && e.logCovers(s.gen):
		for _, c := range e.changes {
			if c.gen <= s.gen {
				continue
			}
			for i, n := range c.names {
				if _, sub := subs[n]; sub {
					s.sum ^= c.deltas[i]
				}
			}
		}
	default:
		s.sum = 0
		for n := range subs {
			s.sum ^= e.items[n].term // zero when absent
		}
	}
	s.gen = e.gen
	e.sums[w.subs] = s
	return s.sum
}

// logCovers reports whether the change log holds every change after
// generation g. e.mu is held.
func (e *sotwEDS) logCovers(g uint64) bool {
	return g == e.gen || (len(e.changes) > 0 && e.changes[0].gen <= g+1)
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
	deltas := make([]uint64, 0, len(ms)+len(removed))
	for name, m := range ms {
		term := edsTerm(name, m.hash)
		d := e.items[name].term ^ term
		e.items[name] = edsItem{m: m, gen: e.gen, term: term}
		names, deltas = append(names, name), append(deltas, d)
	}
	for _, name := range removed {
		d := e.items[name].term
		delete(e.items, name)
		names, deltas = append(names, name), append(deltas, d)
	}
	for _, d := range deltas {
		e.all ^= d
	}
	e.changes = append(e.changes, genChange{gen: e.gen, names: names, deltas: deltas})
	if len(e.changes) > maxChangeLog {
		e.changes = e.changes[len(e.changes)-maxChangeLog:]
	}
	if e.gen%64 == 0 {
		e.forget()
	}
	var out []answered
	versions := map[uint64]string{} // by subscription hash: most streams share a few
	for id, w := range e.watches {
		if w.early {
			w.early = false
			if send, force := e.missing(w); force || len(send) > 0 {
				out = append(out, answered{ch: w.ch, resp: e.response(w, send, versions)})
				delete(e.watches, id)
			}
			continue
		}
		if send := e.subscribed(w, names); len(send) > 0 {
			out = append(out, answered{ch: w.ch, resp: e.response(w, send, versions)})
			delete(e.watches, id)
		}
	}
	return out
}

// maxIssuedAge is how many generations a version sent is remembered: an
// acknowledgement overtaken by changes comes back within a few; one
// older is sent everything it subscribes to. It bounds issued to a few
// entries per subscription in use, under constant churn too.
const maxIssuedAge = 128

// forget drops the memos older than the change log, and the versions sent
// longer than maxIssuedAge generations ago. e.mu is held.
func (e *sotwEDS) forget() {
	for k, s := range e.sums {
		if !e.logCovers(s.gen) {
			delete(e.sums, k)
		}
	}
	for k, g := range e.issued {
		if !e.logCovers(g) || g+maxIssuedAge < e.gen {
			delete(e.issued, k)
		}
	}
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
	// Before the first update nothing is known: a stream reconnecting to a
	// restarted meshd that answered now would be sent an empty response,
	// then everything again. It waits for the first update instead.
	if w.early = e.gen == 0; !w.early {
		if send, ok := e.missing(w); ok || len(send) > 0 {
			e.respond(w, send)
			return func() {}, nil
		}
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
// even with none (a stream's first request, or one whose version does not
// name what it subscribes to). e.mu is held.
func (e *sotwEDS) missing(w *edsWatch) ([]string, bool) {
	subs := w.sub.SubscribedResources()
	if held, ok := parseEDSVersion(w.req.GetVersionInfo()); ok {
		cur := e.contentSum(w)
		if held == cur {
			// It holds what it subscribes to, whoever sent it: this
			// process, another replica, or this one before a restart.
			e.note(cur, w.subs)
			return nil, false
		}
		if g, ok := e.issued[issueKey{held, w.subs}]; ok && e.logCovers(g) {
			// It holds what it subscribes to as of generation g: it
			// lacks only what changed since.
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
	// A new stream, a changed subscription, a version older than the change
	// log or content that differs: everything it subscribes to.
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

// note remembers that sum is the content hash of subscription subs as of
// the current generation. e.mu is held.
func (e *sotwEDS) note(sum, subs uint64) {
	e.issued[issueKey{sum, subs}] = e.gen
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
	key := w.subs
	if w.sub.IsWildcard() {
		key = wildcardKey
	}
	v, ok := versions[key]
	if !ok {
		sum := e.contentSum(w)
		e.note(sum, w.subs)
		v = edsVersion(sum)
		if versions != nil {
			versions[key] = v
		}
	}
	return &sharedResponse{req: w.req, version: v, anys: anys, entries: entries}
}

// wildcardKey keys a wildcard's version in response's memo (subsHash gives
// a wildcard and an empty name list the same hash, 0).
const wildcardKey = ^uint64(0)

// CreateDeltaWatch is not served here: delta streams have their own
// assignments and change log (deltaeds.go).
func (e *sotwEDS) CreateDeltaWatch(*cachev3.DeltaRequest, cachev3.Subscription, chan cachev3.DeltaResponse) (func(), error) {
	return nil, errors.New("sotwEDS serves state-of-the-world streams only")
}

// Fetch is not supported: meshd serves ADS only.
func (e *sotwEDS) Fetch(context.Context, *cachev3.Request) (cachev3.Response, error) {
	return nil, errors.New("meshd serves ADS only")
}
