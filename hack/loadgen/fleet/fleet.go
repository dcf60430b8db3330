// Package fleet runs many simulated proxies (internal/xdsclient clients)
// against one ADS server: istiod-style node IDs and metadata spread over
// namespaces, a few shared gRPC connections, reconnection with Envoy-like
// jittered backoff, and per proxy and type a log of what arrived when.
// Held and Resume reconnect the proxies to a restarted server presenting
// what they hold (state of the world: versions and subscriptions; delta:
// initial_resource_versions, kept with Options.TrackVersions) and count
// what they are sent again. It is the library behind hack/loadgen and
// hack/bench.
package fleet

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/meshd/meshd/internal/xdsclient"
)

// Options describe a fleet. Address and Proxies are required.
type Options struct {
	// Address is the ADS server, host:port (plaintext).
	Address string
	// Proxies is how many proxies to simulate.
	Proxies int
	// Namespaces the proxies are spread over, round robin. Default "default".
	Namespaces []string
	// Labels, if set, returns proxy i's workload labels (sent as LABELS).
	Labels func(i int) map[string]string
	// StreamsPerConn is how many streams share one gRPC connection
	// (default 100).
	StreamsPerConn int
	// Delta speaks the incremental protocol instead of state of the world.
	Delta bool
	// TrackVersions keeps, for delta proxies, the version of every
	// resource held, so that Held can present them on a reconnection
	// (initial_resource_versions): each client keeps them as it accepts
	// them (xdsclient.Options.Versions), which costs the load generator
	// the interning of every version received.
	TrackVersions bool
	// Rate, if positive, is how many proxies start per second; by default
	// all start at once (a connect storm).
	Rate float64
	// BackoffBase and BackoffMax bound the jittered exponential backoff
	// between reconnection attempts (Envoy: 500ms and 30s).
	BackoffBase, BackoffMax time.Duration
	// OnResponse, if set, sees every response of every proxy (it must be
	// quick and safe for concurrent use). Fleet.SetHook adds another.
	OnResponse func(*Proxy, xdsclient.Response)
}

func (o Options) withDefaults() Options {
	if len(o.Namespaces) == 0 {
		o.Namespaces = []string{"default"}
	}
	if o.StreamsPerConn <= 0 {
		o.StreamsPerConn = 100
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 500 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 30 * time.Second
	}
	return o
}

// Hook sees one response of one proxy.
type Hook func(*Proxy, xdsclient.Response)

// Fleet is a running set of simulated proxies.
type Fleet struct {
	opts    Options
	conns   []*grpc.ClientConn
	proxies []*Proxy
	hook    atomic.Pointer[Hook]
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	began   time.Time
}

// NodeID returns the istiod-style node ID of proxy i in namespace ns:
// sidecar~10.x.y.z~pod-i.ns~ns.svc.cluster.local.
func NodeID(i int, ns string) string {
	return fmt.Sprintf("sidecar~%s~pod-%d.%s~%s.svc.cluster.local", NodeIP(i), i, ns, ns)
}

// NodeIP is proxy i's address, 10.x.y.z counted from 10.0.0.1.
func NodeIP(i int) string {
	n := i + 1
	return fmt.Sprintf("10.%d.%d.%d", (n>>16)&0xff, (n>>8)&0xff, n&0xff)
}

// Start dials the connections and starts every proxy (at once, or at
// Options.Rate). It returns at once; the proxies connect in the background
// until Close or ctx ends.
func Start(ctx context.Context, opts Options) (*Fleet, error) {
	opts = opts.withDefaults()
	if opts.Address == "" || opts.Proxies <= 0 {
		return nil, fmt.Errorf("fleet: need an address and a positive number of proxies")
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &Fleet{opts: opts, ctx: ctx, cancel: cancel}
	for range (opts.Proxies + opts.StreamsPerConn - 1) / opts.StreamsPerConn {
		conn, err := grpc.NewClient(opts.Address, grpc.WithTransportCredentials(insecure.NewCredentials()),
			// Envoy's windows are large; keep flow control out of the measurement.
			grpc.WithInitialWindowSize(4<<20), grpc.WithInitialConnWindowSize(64<<20),
			// Fewer reads per response: the load generator shares the cores.
			grpc.WithReadBufferSize(256<<10),
			// A request in one write, as Envoy writes it: a state-of-the-world
			// EDS ACK names every cluster watched (~60 KB at 1,000 services),
			// two or three writes with grpc-go's 32 KB buffer.
			grpc.WithWriteBufferSize(128<<10),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("fleet: dialling %s: %w", opts.Address, err)
		}
		conn.Connect()
		f.conns = append(f.conns, conn)
	}
	f.proxies = make([]*Proxy, opts.Proxies)
	for i := range f.proxies {
		ns := opts.Namespaces[i%len(opts.Namespaces)]
		md := map[string]any{"NAMESPACE": ns}
		if opts.Labels != nil {
			if l := opts.Labels(i); len(l) > 0 {
				lm := make(map[string]any, len(l))
				for k, v := range l {
					lm[k] = v
				}
				md["LABELS"] = lm
			}
		}
		f.proxies[i] = &Proxy{Index: i, NodeID: NodeID(i, ns), Namespace: ns, metadata: md}
	}
	f.began = time.Now()
	f.wg.Add(1)
	go f.launch()
	return f, nil
}

// launch starts the proxies, all at once or at the configured rate.
func (f *Fleet) launch() {
	defer f.wg.Done()
	var tick *time.Ticker
	if f.opts.Rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / f.opts.Rate))
		defer tick.Stop()
	}
	for i, p := range f.proxies {
		if tick != nil && i > 0 {
			select {
			case <-tick.C:
			case <-f.ctx.Done():
				return
			}
		}
		f.wg.Add(1)
		go f.run(p, f.conns[i/f.opts.StreamsPerConn])
	}
}

// run keeps proxy p connected: it starts a client, waits for its stream
// to end, and reconnects after a jittered backoff.
func (f *Fleet) run(p *Proxy, conn *grpc.ClientConn) {
	defer f.wg.Done()
	p.start(time.Now())
	opts := xdsclient.Options{Delta: f.opts.Delta, Versions: f.opts.Delta && f.opts.TrackVersions,
		OnResponse: func(c *xdsclient.Client, r xdsclient.Response) { f.observe(p, c, r) }}
	for attempt := 0; ; attempt++ {
		p.attempts.Add(1)
		c, err := xdsclient.StartWith(conn, p.NodeID, p.metadata, opts)
		if err == nil {
			p.client.Store(c)
			select {
			case <-c.Done():
				err = c.Err()
			case <-f.ctx.Done():
				c.Close()
				return
			}
			if c.Complete() {
				attempt = 0 // it worked for a while: start the backoff afresh
			}
		}
		p.failed(err)
		if !sleep(f.ctx, backoff(attempt, f.opts.BackoffBase, f.opts.BackoffMax)) {
			return
		}
	}
}

// backoff is Envoy's jittered exponential backoff: uniform in
// [0, min(base·2^attempt, max)).
func backoff(attempt int, base, maxWait time.Duration) time.Duration {
	d := maxWait
	if attempt < 30 && base<<attempt < maxWait {
		d = base << attempt
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// observe records a response and passes it to the hooks.
func (f *Fleet) observe(p *Proxy, c *xdsclient.Client, r xdsclient.Response) {
	p.record(r)
	if !r.Nack && p.configured.Load() == 0 && c.Complete() {
		p.configured.CompareAndSwap(0, r.At.UnixNano())
	}
	if f.opts.OnResponse != nil {
		f.opts.OnResponse(p, r)
	}
	if h := f.hook.Load(); h != nil {
		(*h)(p, r)
	}
}

// SetHook installs h to see every response from now on (nil removes it).
func (f *Fleet) SetHook(h Hook) {
	if h == nil {
		f.hook.Store(nil)
		return
	}
	f.hook.Store(&h)
}

// Proxies returns the proxies, by index.
func (f *Fleet) Proxies() []*Proxy { return f.proxies }

// Began is when the fleet started.
func (f *Fleet) Began() time.Time { return f.began }

// Configured counts the proxies that have had their full config.
func (f *Fleet) Configured() int {
	n := 0
	for _, p := range f.proxies {
		if p.configured.Load() != 0 {
			n++
		}
	}
	return n
}

// WaitConfigured waits until every proxy has had its full config, or ctx
// ends (then it returns ctx's error).
func (f *Fleet) WaitConfigured(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for f.Configured() < len(f.proxies) {
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("%d of %d proxies configured: %w", f.Configured(), len(f.proxies), ctx.Err())
		}
	}
	return nil
}

// WaitQuiet waits until no proxy has received anything for quiet, or ctx
// ends.
func (f *Fleet) WaitQuiet(ctx context.Context, quiet time.Duration) error {
	for {
		var last time.Time
		for _, p := range f.proxies {
			if at := p.LastAt(); at.After(last) {
				last = at
			}
		}
		wait := quiet - time.Since(last)
		if wait <= 0 {
			return nil
		}
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
	}
}

// Close stops every proxy and closes the connections.
func (f *Fleet) Close() {
	f.cancel()
	f.wg.Wait()
	for _, c := range f.conns {
		c.Close()
	}
}
