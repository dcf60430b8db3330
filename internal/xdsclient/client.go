package xdsclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"
	"time"
	"unique"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"
)

// Types are the short names of the four types the client follows, in the
// order Envoy subscribes to them.
var Types = []string{"cds", "eds", "lds", "rds"}

var typeURLs = map[string]string{
	"cds": resourcev3.ClusterType, "eds": resourcev3.EndpointType,
	"lds": resourcev3.ListenerType, "rds": resourcev3.RouteType,
}

// dependent maps a type to the type whose names it references.
var dependent = map[string]string{"cds": "eds", "lds": "rds"}

// TypeStats is what the client received of one type.
type TypeStats struct {
	// Responses counts responses received; Resources the resources in them.
	Responses, Resources int
	// Bytes is the total size of the responses.
	Bytes int
	// Version is the version_info of the last accepted response (delta:
	// its system_version_info); Names the names of the resources the client
	// currently holds (sorted).
	Version string
	Names   []string
	// Nacks counts responses the client could not decode and rejected.
	Nacks int
	// At is when the last response arrived.
	At time.Time
}

// Options tune a Client; the zero value is what Start uses.
type Options struct {
	// Delta speaks the incremental protocol (DeltaAggregatedResources)
	// instead of state of the world.
	Delta bool
	// OnResponse, if set, is called on the client's goroutine after each
	// response has been recorded, ACKed or NACKed, and the subscriptions it
	// implies sent. It must be quick.
	OnResponse func(*Client, Response)
	// Versions keeps, on a delta stream, the version of every resource
	// the client holds (as accepted), as Envoy does to present them when
	// it reconnects (initial_resource_versions); Versions returns them.
	Versions bool
}

// Response describes one response as the client handled it.
type Response struct {
	// Type is the short type ("cds", "eds", "lds", "rds").
	Type string
	// Version is version_info (delta: system_version_info); Nonce the nonce.
	Version, Nonce string
	// Names are the resources the response carried; Removed the names a
	// delta response removed.
	Names, Removed []string
	// Bytes is the size of the response message.
	Bytes int
	// At is when the ACK (or NACK) was sent.
	At time.Time
	// Nack is set when the response was rejected; Err says why.
	Nack bool
	Err  error
}

// Client is one simulated proxy on one ADS stream.
type Client struct {
	nodeID string
	opts   Options
	tr     transport
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	stats map[string]*TypeStats
	// held maps type → name of each resource held → what is kept of it.
	held  map[string]map[string]heldResource
	want  map[string][]string // type → subscribed names (eds, rds), sorted
	err   error
	waits []chan struct{} // closed at every response
}

// heldResource is what the client keeps of a resource it holds.
type heldResource struct {
	// name is the handle of its interned name (the key it is held by),
	// which keeps the name interned (see intern); version a delta
	// resource's interned version (with Options.Versions); zero if none.
	name, version unique.Handle[string]
	// refs are the names it references (EDS names of a cluster, RDS names
	// of a listener; nil for the others).
	refs []string
}

// versionString is the held resource's version, "" if none.
func (r heldResource) versionString() string {
	if r.version == (unique.Handle[string]{}) {
		return ""
	}
	return r.version.Value()
}

// Start opens a state-of-the-world ADS stream on conn as node nodeID with
// the given metadata (NAMESPACE, GENERATOR, ...) and subscribes like Envoy.
// It runs until Close or until the stream fails (Err).
func Start(conn grpc.ClientConnInterface, nodeID string, metadata map[string]any) (*Client, error) {
	return StartWith(conn, nodeID, metadata, Options{})
}

// StartWith is Start with Options (delta protocol, a response callback).
func StartWith(conn grpc.ClientConnInterface, nodeID string, metadata map[string]any, opts Options) (*Client, error) {
	md, err := structpb.NewStruct(metadata)
	if err != nil {
		return nil, fmt.Errorf("node metadata: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	node := &core.Node{Id: nodeID, Metadata: md}
	var tr transport
	if opts.Delta {
		tr, err = openDelta(ctx, conn, node)
	} else {
		tr, err = openSotW(ctx, conn, node)
	}
	if err != nil {
		cancel()
		return nil, err
	}
	c := newClient(nodeID, opts, tr, cancel)
	for _, t := range []string{"cds", "lds"} {
		if err := tr.subscribe(t, nil, nil, nil); err != nil {
			if errors.Is(err, io.EOF) {
				// The server ended the stream (e.g. RESOURCE_EXHAUSTED from
				// its stream rate limit): its status comes with the next
				// receive, as gRPC documents for SendMsg.
				if _, rerr := tr.recv(); rerr != nil {
					err = rerr
				}
			}
			cancel()
			return nil, err
		}
	}
	go c.run()
	return c, nil
}

// newClient returns a client of node nodeID on transport tr, holding
// nothing yet; cancel ends its stream.
func newClient(nodeID string, opts Options, tr transport, cancel context.CancelFunc) *Client {
	c := &Client{nodeID: nodeID, opts: opts, tr: tr, cancel: cancel, done: make(chan struct{}),
		stats: map[string]*TypeStats{}, held: map[string]map[string]heldResource{}, want: map[string][]string{}}
	for _, t := range Types {
		c.stats[t] = &TypeStats{}
		c.held[t] = map[string]heldResource{}
	}
	return c
}

// NodeID is the node ID the client connected with.
func (c *Client) NodeID() string { return c.nodeID }

// Close ends the stream and waits for the client to stop.
func (c *Client) Close() {
	c.cancel()
	<-c.done
}

// Done is closed when the client has stopped (Close, or the stream failed).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err is why the stream ended, nil while it runs.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Stats returns a copy of what was received, by short type.
func (c *Client) Stats() map[string]TypeStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]TypeStats, len(c.stats))
	for t, s := range c.stats {
		cp := *s
		cp.Names = slices.Sorted(maps.Keys(c.held[t]))
		out[t] = cp
	}
	return out
}

// Subscribed returns the names the client subscribes to of type t ("eds"
// or "rds"), sorted; nil for the wildcard types.
func (c *Client) Subscribed(t string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.want[t])
}

// Versions returns the resources of type t the client holds, name →
// version: the version each was accepted at on a delta stream with
// Options.Versions, "" otherwise.
func (c *Client) Versions(t string) map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]string, len(c.held[t]))
	for n, r := range c.held[t] {
		out[n] = r.versionString()
	}
	return out
}

// Holds reports whether the client holds the resource of type t named name.
func (c *Client) Holds(t, name string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.held[t][name]
	return ok
}

// Complete reports whether the client has its full config: an accepted
// CDS and LDS response, and every EDS and RDS name they reference.
func (c *Client) Complete() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, t := range []string{"cds", "lds"} {
		if c.stats[t].Responses-c.stats[t].Nacks == 0 {
			return false
		}
	}
	for _, t := range []string{"eds", "rds"} {
		for _, n := range c.want[t] {
			if _, ok := c.held[t][n]; !ok {
				return false
			}
		}
	}
	return true
}

// Changed returns a channel closed at the next response of any type.
func (c *Client) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	c.waits = append(c.waits, ch)
	return ch
}

// Wait returns nil once cond holds (checked now and after every response),
// ctx's error if it ends first, or the stream's error if it fails first.
func (c *Client) Wait(ctx context.Context, cond func(*Client) bool) error {
	for {
		ch := c.Changed()
		if cond(c) {
			return nil
		}
		select {
		case <-ch:
		case <-c.done:
			if cond(c) {
				return nil
			}
			if err := c.Err(); err != nil {
				return err
			}
			return errors.New("xdsclient: stream ended")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *Client) run() {
	defer close(c.done)
	for {
		u, err := c.tr.recv()
		if err == nil {
			err = c.handle(u)
			responseBufs.Put(u.buf) // what handle kept is interned or copied
		}
		if err != nil {
			c.mu.Lock()
			c.err = err
			for _, ch := range c.waits {
				close(ch)
			}
			c.waits = nil
			c.mu.Unlock()
			return
		}
	}
}

// handle records a response, ACKs (or NACKs) it and subscribes to the EDS
// and RDS names it references.
func (c *Client) handle(u *update) error {
	short := shortType(u.typeURL)
	if short == "" {
		return nil
	}
	decodeErr := decode(short, u)
	c.mu.Lock()
	st := c.stats[short]
	st.Responses++
	st.Resources += len(u.res)
	st.Bytes += u.bytes
	st.At = time.Now()
	var sub *subscription
	if decodeErr != nil {
		st.Nacks++
	} else {
		st.Version = u.version
		exact, changed := c.hold(short, u)
		if changed {
			sub = c.follow(short, u, exact)
		}
	}
	for _, ch := range c.waits {
		close(ch)
	}
	c.waits = nil
	names, version := c.want[short], st.Version
	c.mu.Unlock()

	if err := c.tr.ack(u, version, names, decodeErr); err != nil {
		return err
	}
	at := time.Now()
	if sub != nil {
		if err := c.tr.subscribe(sub.typ, sub.names, sub.added, sub.removed); err != nil {
			return err
		}
	}
	if c.opts.OnResponse != nil {
		r := Response{Type: short, Version: u.version, Nonce: u.nonce, Removed: u.removed, Bytes: u.bytes, At: at,
			Nack: decodeErr != nil, Err: decodeErr}
		r.Names = make([]string, len(u.res))
		for i, x := range u.res {
			r.Names[i] = x.name
		}
		c.opts.OnResponse(c, r)
	}
	return nil
}

// hold records the resources of an accepted response: a full state for
// state-of-the-world CDS and LDS, an update of the named ones otherwise.
// exact reports that the resources held of the type are now exactly u's
// (all distinct), changed that the names they reference may have changed
// (see follow). c.mu must be held.
func (c *Client) hold(short string, u *update) (exact, changed bool) {
	h := c.held[short]
	fresh := u.full || len(h) == 0
	if fresh && (u.full || len(u.res) > 1) { // sized once, not grown insert by insert
		h = make(map[string]heldResource, len(u.res))
		c.held[short] = h
	}
	_, refers := dependent[short]
	versions := c.opts.Versions && u.delta
	for i := range u.res {
		r := &u.res[i]
		if refers && !fresh && !changed {
			changed = !slices.Equal(h[r.name].refs, r.refs)
		}
		var v unique.Handle[string]
		if versions && r.version != "" {
			v = internHandle(r.version) // a copy: r.version aliases the response's buffer
		}
		h[r.name] = heldResource{name: r.handle, version: v, refs: r.refs}
	}
	for _, n := range u.removed {
		if refers && !changed {
			changed = len(h[n].refs) > 0
		}
		delete(h, n)
	}
	if want, ok := c.want[short]; ok && !u.delta {
		// Hold only what is subscribed: follow forgets what a new
		// subscription drops, so only this response's names need a look.
		for _, r := range u.res {
			if _, found := slices.BinarySearch(want, r.name); !found {
				delete(h, r.name)
			}
		}
	}
	return fresh && len(h) == len(u.res), refers && (fresh || changed)
}

// subscription is a change of the names subscribed to of one type.
type subscription struct {
	typ                   string
	names, added, removed []string
}

// follow recomputes the names type short's held resources reference and
// returns the subscription change, nil if none; exact is hold's (the
// names are then collected in u's order, usually sorted already, rather
// than the map's). c.mu must be held.
func (c *Client) follow(short string, u *update, exact bool) *subscription {
	dep, ok := dependent[short]
	if !ok {
		return nil
	}
	var names []string
	if exact {
		names = make([]string, 0, len(u.res))
		for _, r := range u.res {
			names = append(names, r.refs...)
		}
	} else {
		held := c.held[short]
		names = make([]string, 0, len(held))
		for _, r := range held {
			names = append(names, r.refs...)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	old := c.want[dep]
	if slices.Equal(old, names) {
		return nil
	}
	s := &subscription{typ: dep, names: names}
	if len(old) == 0 {
		s.added = names // both only read
	} else {
		s.added, s.removed = sortedDiff(names, old)
	}
	c.want[dep] = names
	if len(s.removed) > 0 { // stop holding what is no longer wanted
		for _, n := range s.removed {
			delete(c.held[dep], n)
		}
	}
	return s
}

// sortedDiff returns the names in a and not in b, and those in b and not
// in a, in order (a and b sorted, without duplicates).
func sortedDiff(a, b []string) (onlyA, onlyB []string) {
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			onlyA = append(onlyA, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			onlyB = append(onlyB, b[j])
			j++
		default:
			i++
			j++
		}
	}
	return onlyA, onlyB
}

func shortType(typeURL string) string {
	for s, u := range typeURLs {
		if u == typeURL {
			return s
		}
	}
	return ""
}
