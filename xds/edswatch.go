package xds

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
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
// new request that echoes the current generation is registered in O(1).
// Assignments are marshalled once and shared by every stream.
type sotwEDS struct {
	mu      sync.Mutex
	boot    string // distinguishes this process's versions from another's
	gen     uint64
	items   map[string]edsItem
	changes []genChange // the newest last; at most maxChangeLog
	watches map[int64]*sharedWatch
	nextID  int64
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
	return &sotwEDS{boot: strconv.FormatUint(rand.Uint64()%1e6, 36), items: map[string]edsItem{}, watches: map[int64]*sharedWatch{}}
}

func (e *sotwEDS) version() string { return fmt.Sprintf("eds-%s-%d", e.boot, e.gen) }

// genOf returns the generation a request's version names, if it is this
// process's.
func (e *sotwEDS) genOf(v string) (uint64, bool) {
	rest, ok := strings.CutPrefix(v, "eds-"+e.boot+"-")
	if !ok {
		return 0, false
	}
	g, err := strconv.ParseUint(rest, 10, 64)
	return g, err == nil
}

// update applies changed assignments and removals, and answers the watches
// of the streams that subscribe to one of them.
func (e *sotwEDS) update(changed map[string]*endpoint.ClusterLoadAssignment, removed []string) error {
	ms := make(map[string]marshalled, len(changed))
	for name, cla := range changed {
		m, err := marshal(nil, resourcev3.EndpointType, cla)
		if err != nil {
			return fmt.Errorf("marshalling %s: %w", name, err)
		}
		ms[name] = m
	}
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
	for id, w := range e.watches {
		if send := e.subscribed(w, names); len(send) > 0 {
			e.respond(w, send)
			delete(e.watches, id)
		}
	}
	return nil
}

// subscribed returns those of names that w subscribes to and that exist.
func (e *sotwEDS) subscribed(w *sharedWatch, names []string) []string {
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
	w := &sharedWatch{req: req, sub: sub, ch: ch}
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
// even with none (a stream's first request). e.mu is held.
func (e *sotwEDS) missing(w *sharedWatch) ([]string, bool) {
	returned := w.sub.ReturnedResources()
	subs := w.sub.SubscribedResources()
	if g, ok := e.genOf(w.req.GetVersionInfo()); ok && len(returned) > 0 && len(returned) == len(subs) && !w.sub.IsWildcard() {
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
					if _, sub := subs[n]; sub && !seen[n] {
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
	// Compare every subscribed name with what the stream was last sent.
	var send []string
	if w.sub.IsWildcard() {
		for n, it := range e.items {
			if returned[n] != it.m.hash {
				send = append(send, n)
			}
		}
	} else {
		for n := range subs {
			if it, ok := e.items[n]; ok && returned[n] != it.m.hash {
				send = append(send, n)
			}
		}
	}
	return send, w.req.GetVersionInfo() == ""
}

// respond sends w the named assignments. e.mu is held; the stream's channel
// holds one response per type, so this never blocks.
func (e *sotwEDS) respond(w *sharedWatch, send []string) {
	returned := w.sub.ReturnedResources()
	subs := w.sub.SubscribedResources()
	next := make(map[string]string, len(subs))
	for n, v := range returned {
		if _, ok := e.items[n]; ok {
			if _, sub := subs[n]; sub || w.sub.IsWildcard() {
				next[n] = v
			}
		}
	}
	anys := make([]*anypb.Any, 0, len(send))
	for _, n := range send {
		it := e.items[n]
		anys = append(anys, it.m.any)
		next[n] = it.m.hash
	}
	w.ch <- &sharedResponse{req: w.req, version: e.version(), anys: anys, returned: next}
}

// CreateDeltaWatch is not served here: delta streams use the LinearCache.
func (e *sotwEDS) CreateDeltaWatch(*cachev3.DeltaRequest, cachev3.Subscription, chan cachev3.DeltaResponse) (func(), error) {
	return nil, errors.New("sotwEDS serves state-of-the-world streams only")
}

// Fetch is not supported: meshd serves ADS only.
func (e *sotwEDS) Fetch(context.Context, *cachev3.Request) (cachev3.Response, error) {
	return nil, errors.New("meshd serves ADS only")
}
