package main

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"github.com/meshd/meshd/hack/loadgen/fleet"
	"github.com/meshd/meshd/internal/xdsclient"
)

// Latency is a latency distribution in milliseconds.
type Latency struct {
	N     int     `json:"n"`
	P50Ms float64 `json:"p50Ms"`
	P90Ms float64 `json:"p90Ms"`
	P99Ms float64 `json:"p99Ms"`
	MaxMs float64 `json:"maxMs"`
}

func latency(ds []time.Duration) Latency {
	s := fleet.Quantiles(ds)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{N: s.N, P50Ms: ms(s.P50), P90Ms: ms(s.P90), P99Ms: ms(s.P99), MaxMs: ms(s.Max)}
}

// Storm is the connect-storm result.
type Storm struct {
	Proxies    int     `json:"proxies"`
	Configured int     `json:"configured"`
	Latency    Latency `json:"configuredAfter"`
	// Streams counts the ADS streams opened (more than Proxies when
	// meshd's stream rate limit refused some and they retried).
	Streams int `json:"streams"`
	// BytesPerProxy is what an average proxy received, per type.
	BytesPerProxy map[string]int `json:"bytesPerProxy"`
}

// Change is the result of one kind of change (endpoint churn or canary),
// over all rounds.
type Change struct {
	Rounds int `json:"rounds"`
	// Watching is how many proxies watched the changed resource (summed
	// over rounds); Received how many got the new version before the
	// timeout; Latency from the API write to each one's ACK.
	Watching int     `json:"watching"`
	Received int     `json:"received"`
	Latency  Latency `json:"latency"`
	// AllBy is, per round, when the last watching proxy had ACKed (ms).
	AllByMs []float64 `json:"allByMs"`
	// WriteMs is how long each API write took to be accepted.
	WriteMs []float64 `json:"writeMs"`
	// Responses counts the responses of each type all proxies received
	// during the rounds; BytesPerProxy the bytes an average proxy received
	// per round, per type.
	Responses     map[string]int     `json:"responses"`
	BytesPerProxy map[string]float64 `json:"bytesPerProxy"`
	// PushedProxies is how many proxies received anything, per round.
	PushedProxies []int `json:"pushedProxies"`
	// Pushes is meshd's /debug/push_status after each round.
	Pushes []PushStatus `json:"pushes"`
	// Timeline is, per round, where the time went (see RoundTimeline).
	Timeline []RoundTimeline `json:"timeline"`
	// MeshdAllocatedMB is what meshd allocated per round (from the write
	// to a quiet second after the last ACK), MeshdGCs how many
	// collections it ran meanwhile: a collection during the fan-out
	// shows as a gap in the ACKs.
	MeshdAllocatedMB []float64 `json:"meshdAllocatedMB"`
	MeshdGCs         []int     `json:"meshdGCs"`

	samples []time.Duration
	// began is when each round's API write was made; acks its watching
	// proxies' ACK times, from began (for the round's timeline).
	began []time.Time
	acks  [][]time.Duration
}

// RoundTimeline is one round's course, in ms from the API write: when
// meshd's push began (the write accepted, the watch event delivered, the
// debounce passed) and ended (translation done, responses handed to the
// streams), and when the watching proxies ACKed: the first, half of them,
// the last. The push's figures are zero if meshd pushed again since.
type RoundTimeline struct {
	// At is when the API write was made.
	At          time.Time `json:"at"`
	PushStartMs float64   `json:"pushStartMs"`
	PushEndMs   float64   `json:"pushEndMs"`
	FirstAckMs  float64   `json:"firstAckMs"`
	HalfAckMs   float64   `json:"halfAckMs"`
	LastAckMs   float64   `json:"lastAckMs"`
	// AckedPer10Ms counts the ACKs in each 10 ms from the write: stalls
	// show as gaps.
	AckedPer10Ms []int `json:"ackedPer10Ms"`
}

// PushStatus is the part of meshd's /debug/push_status the report shows.
type PushStatus struct {
	EndpointsOnly bool  `json:"endpointsOnly"`
	ScopesBuilt   int   `json:"scopesBuilt"`
	ScopesChanged int   `json:"scopesChanged"`
	DurationNanos int64 `json:"durationNanos"`
	DebounceNanos int64 `json:"debounceNanos"`
	// Started is when the push began (its debounce ended).
	Started time.Time `json:"started"`
}

// storm connects every proxy at once and waits until all are configured.
func storm(ctx context.Context, opts fleet.Options, timeout time.Duration) (*fleet.Fleet, Storm, error) {
	f, err := fleet.Start(ctx, opts)
	if err != nil {
		return nil, Storm{}, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	waitErr := f.WaitConfigured(wctx)
	res := Storm{Proxies: opts.Proxies, BytesPerProxy: map[string]int{}}
	var ds []time.Duration
	for _, p := range f.Proxies() {
		if d, ok := p.ConfiguredAfter(); ok {
			ds = append(ds, d)
		}
		res.Streams += p.Attempts()
		b, _ := fleet.Totals(p.Arrivals(0))
		for t, n := range b {
			res.BytesPerProxy[t] += n
		}
	}
	for t := range res.BytesPerProxy {
		res.BytesPerProxy[t] /= opts.Proxies
	}
	res.Configured, res.Latency = len(ds), latency(ds)
	if waitErr != nil {
		return f, res, fmt.Errorf("connect storm: %w", waitErr)
	}
	return f, res, nil
}

// probe records, per proxy, when it first ACKed a response of type typ
// carrying resource name.
type probe struct {
	typ, name string
	at        []atomic.Int64
	n         atomic.Int32
	// since is when the change was written (UnixNano): ACKs from before
	// it are of an earlier version. Nothing counts until arm sets it.
	since atomic.Int64
}

// arm makes the probe count ACKs sent from t0 on.
func (pr *probe) arm(t0 time.Time) { pr.since.Store(t0.UnixNano()) }

func newProbe(f *fleet.Fleet, typ, name string) *probe {
	pr := &probe{typ: typ, name: name, at: make([]atomic.Int64, len(f.Proxies()))}
	pr.since.Store(math.MaxInt64)
	f.SetHook(func(p *fleet.Proxy, r xdsclient.Response) {
		if r.Type == pr.typ && !r.Nack && r.At.UnixNano() >= pr.since.Load() && slices.Contains(r.Names, pr.name) &&
			pr.at[p.Index].CompareAndSwap(0, r.At.UnixNano()) {
			pr.n.Add(1)
		}
	})
	return pr
}

// watchers returns the proxies subscribed to name of type typ.
func watchers(f *fleet.Fleet, typ, name string) []*fleet.Proxy {
	var out []*fleet.Proxy
	for _, p := range f.Proxies() {
		if c := p.Client(); c != nil {
			if _, ok := slices.BinarySearch(c.Subscribed(typ), name); ok {
				out = append(out, p)
			}
		}
	}
	return out
}

// round makes one change (write) and measures its propagation to the
// proxies watching resource name of type typ (those sees accepts, if set:
// the proxies the change concerns): it waits for all of them (or
// timeout), then for a quiet second, and adds the figures to res.
func round(ctx context.Context, f *fleet.Fleet, typ, name string, sees func(*fleet.Proxy) bool, write func() error,
	timeout time.Duration, res *Change) error {
	watching := watchers(f, typ, name)
	if sees != nil {
		watching = slices.DeleteFunc(watching, func(p *fleet.Proxy) bool { return !sees(p) })
	}
	if len(watching) == 0 {
		return fmt.Errorf("no proxy watches %s %s", typ, name)
	}
	marks := make([]int, len(f.Proxies()))
	for i, p := range f.Proxies() {
		marks[i] = p.Mark()
	}
	pr := newProbe(f, typ, name)
	defer f.SetHook(nil)
	// The simulated proxies' collector (this process's heap is ~850 MB at
	// 2,000 proxies, a cycle ~0.4 s of CPU) must not run during a
	// measured change on the cores meshd uses: collect now, so that the
	// next collection is a whole heap's growth away.
	runtime.GC()
	t0 := time.Now()
	pr.arm(t0)
	if err := write(); err != nil {
		return err
	}
	res.WriteMs = append(res.WriteMs, float64(time.Since(t0).Microseconds())/1000)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		done := 0
		for _, p := range watching {
			if pr.at[p.Index].Load() != 0 {
				done++
			}
		}
		if done == len(watching) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	qctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_ = f.WaitQuiet(qctx, time.Second)
	cancel()

	res.Rounds++
	res.Watching += len(watching)
	var acks []time.Duration
	for _, p := range watching {
		if at := pr.at[p.Index].Load(); at != 0 {
			acks = append(acks, time.Duration(at-t0.UnixNano()))
		}
	}
	slices.Sort(acks)
	res.Received += len(acks)
	res.samples = append(res.samples, acks...)
	res.began, res.acks = append(res.began, t0), append(res.acks, acks)
	var last time.Duration
	if len(acks) > 0 {
		last = acks[len(acks)-1]
	}
	res.AllByMs = append(res.AllByMs, float64(last.Microseconds())/1000)
	pushed := 0
	for i, p := range f.Proxies() {
		arr := p.Arrivals(marks[i])
		if len(arr) > 0 {
			pushed++
		}
		b, r := fleet.Totals(arr)
		for t, n := range r {
			res.Responses[t] += n
		}
		for t, n := range b {
			res.BytesPerProxy[t] += float64(n) / float64(len(f.Proxies()))
		}
	}
	res.PushedProxies = append(res.PushedProxies, pushed)
	res.Latency = latency(res.samples)
	return nil
}

func newChange() Change {
	return Change{Responses: map[string]int{}, BytesPerProxy: map[string]float64{}}
}

// perRound turns BytesPerProxy from a sum over rounds into a per-round
// mean, and lays out each round's timeline from its push status.
func (c *Change) perRound() {
	if c.Rounds == 0 {
		return
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	for r, t0 := range c.began {
		tl := RoundTimeline{At: t0}
		if r < len(c.Pushes) && !c.Pushes[r].Started.Before(t0) {
			ps := c.Pushes[r]
			tl.PushStartMs = ms(ps.Started.Sub(t0))
			tl.PushEndMs = ms(ps.Started.Add(time.Duration(ps.DurationNanos)).Sub(t0))
		}
		if acks := c.acks[r]; len(acks) > 0 {
			tl.FirstAckMs, tl.HalfAckMs, tl.LastAckMs = ms(acks[0]), ms(acks[len(acks)/2]), ms(acks[len(acks)-1])
			bucket := func(a time.Duration) int { return int(max(a, 0) / (10 * time.Millisecond)) } // the probe counts none before the write
			tl.AckedPer10Ms = make([]int, bucket(acks[len(acks)-1])+1)
			for _, a := range acks {
				tl.AckedPer10Ms[bucket(a)]++
			}
		}
		c.Timeline = append(c.Timeline, tl)
	}
	for t := range c.BytesPerProxy {
		c.BytesPerProxy[t] /= float64(c.Rounds)
	}
}
