package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"
)

// Held is what one proxy holds, as it presents it when it reconnects
// (Envoy after a control-plane restart): state of the world, the last
// accepted version_info of each type with its subscription; delta, every
// resource held with its version (initial_resource_versions) and the
// subscriptions.
type Held struct {
	// Versions is the last accepted version_info per type.
	Versions map[string]string `json:"versions"`
	// Subscribed are the names subscribed to (eds, rds; cds and lds are
	// wildcard).
	Subscribed map[string][]string `json:"subscribed"`
	// Resources are the resources held per type, name → version (the
	// version is "" unless Options.TrackVersions kept it for delta: the
	// version the proxy accepted the resource at).
	Resources map[string]map[string]string `json:"resources"`
}

// Held returns, per proxy (by index), what it holds now. A proxy that
// never connected holds nothing.
func (f *Fleet) Held() []Held {
	out := make([]Held, len(f.proxies))
	for i, p := range f.proxies {
		h := Held{Versions: map[string]string{}, Subscribed: map[string][]string{}, Resources: map[string]map[string]string{}}
		if c := p.Client(); c != nil {
			for t, st := range c.Stats() {
				h.Versions[t] = st.Version
				h.Resources[t] = c.Versions(t)
			}
			for _, t := range []string{"eds", "rds"} {
				h.Subscribed[t] = c.Subscribed(t)
			}
		}
		out[i] = h
	}
	return out
}

// ResumeOptions describe a reconnection of the fleet's proxies.
type ResumeOptions struct {
	// Address is the ADS server (the restarted one).
	Address string
	// StreamsPerConn: as Options (default 100).
	StreamsPerConn int
	// Delta: the protocol (as the fleet spoke it).
	Delta bool
	// Quiet ends the reconnection once every stream has been open and no
	// response has arrived for this long (default 2s); Timeout bounds it.
	Quiet, Timeout time.Duration
	// BackoffBase and BackoffMax: as Options.
	BackoffBase, BackoffMax time.Duration
}

// Resumed is what a reconnection of every proxy received.
type Resumed struct {
	Proxies int `json:"proxies"`
	// Streams counts the streams opened, Refused those the server
	// refused (its stream rate limit) or that failed.
	Streams int `json:"streams"`
	Refused int `json:"refused"`
	// Reconnected counts the proxies whose stream stayed open.
	Reconnected int `json:"reconnected"`
	// Presented is the resources the proxies presented (held), per type.
	Presented map[string]int `json:"presented"`
	// Responses, Resources, Bytes and Removed are what the proxies
	// received, per type, summed over the proxies.
	Responses map[string]int `json:"responses"`
	Resources map[string]int `json:"resources"`
	Bytes     map[string]int `json:"bytes"`
	Removed   map[string]int `json:"removed"`
	// Unchanged counts the resources received again at the version the
	// proxy presented (delta: per resource; state of the world: every
	// resource of a response whose version_info is the one presented).
	Unchanged map[string]int `json:"unchanged"`
	// PushedProxies counts the proxies that received any response.
	PushedProxies int `json:"pushedProxies"`
	// Seconds is how long the reconnection took to be quiet.
	Seconds float64 `json:"seconds"`
}

func (o ResumeOptions) withDefaults() ResumeOptions {
	if o.StreamsPerConn <= 0 {
		o.StreamsPerConn = 100
	}
	if o.Quiet <= 0 {
		o.Quiet = 2 * time.Second
	}
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 500 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = 30 * time.Second
	}
	return o
}

// resumer is one proxy's reconnection.
type resumer struct {
	p    *Proxy
	held Held
	node *core.Node
	// openedAt is when the current stream opened (0: none open);
	// lastAt when the last response arrived (UnixNano).
	openedAt, lastAt atomic.Int64

	mu                   sync.Mutex
	streams, refused     int
	responses, resources map[string]int
	bytes, removed       map[string]int
	unchanged            map[string]int
}

// Resume reconnects every proxy of the (closed) fleet to opts.Address
// presenting held[i] (from Held, before Close), and returns what they
// received until quiet. The proxies ACK what they receive and subscribe
// nothing new.
func (f *Fleet) Resume(ctx context.Context, held []Held, opts ResumeOptions) (Resumed, error) {
	opts = opts.withDefaults()
	if len(held) != len(f.proxies) {
		return Resumed{}, fmt.Errorf("fleet: %d held states for %d proxies", len(held), len(f.proxies))
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var conns []*grpc.ClientConn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range (len(f.proxies) + opts.StreamsPerConn - 1) / opts.StreamsPerConn {
		conn, err := grpc.NewClient(opts.Address, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithInitialWindowSize(4<<20), grpc.WithInitialConnWindowSize(64<<20),
			grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
		if err != nil {
			return Resumed{}, fmt.Errorf("fleet: dialling %s: %w", opts.Address, err)
		}
		conn.Connect()
		conns = append(conns, conn)
	}
	rs := make([]*resumer, len(f.proxies))
	var wg sync.WaitGroup
	began := time.Now()
	for i, p := range f.proxies {
		md, err := structpb.NewStruct(p.metadata)
		if err != nil {
			return Resumed{}, err
		}
		r := &resumer{p: p, held: held[i], node: &core.Node{Id: p.NodeID, Metadata: md},
			responses: map[string]int{}, resources: map[string]int{}, bytes: map[string]int{},
			removed: map[string]int{}, unchanged: map[string]int{}}
		rs[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.run(ctx, conns[i/opts.StreamsPerConn], opts)
		}()
	}
	err := waitResumed(ctx, rs, opts.Quiet, opts.Timeout)
	out := summariseResumed(rs)
	out.Seconds = time.Since(began).Seconds() - opts.Quiet.Seconds()
	cancel()
	wg.Wait()
	return out, err
}

// waitResumed waits until every proxy's stream has been open for quiet
// and nothing has arrived for quiet, or timeout.
func waitResumed(ctx context.Context, rs []*resumer, quiet, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		now := time.Now().UnixNano()
		settled := true
		for _, r := range rs {
			o, l := r.openedAt.Load(), r.lastAt.Load()
			if o == 0 || now-o < int64(quiet) || now-l < int64(quiet) {
				settled = false
				break
			}
		}
		if settled {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("fleet: reconnection not quiet after %v", timeout)
		}
		if !sleep(ctx, 50*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func summariseResumed(rs []*resumer) Resumed {
	out := Resumed{Proxies: len(rs), Presented: map[string]int{}, Responses: map[string]int{}, Resources: map[string]int{},
		Bytes: map[string]int{}, Removed: map[string]int{}, Unchanged: map[string]int{}}
	for _, r := range rs {
		r.mu.Lock()
		out.Streams += r.streams
		out.Refused += r.refused
		if r.openedAt.Load() != 0 {
			out.Reconnected++
		}
		for t, rr := range r.held.Resources {
			out.Presented[t] += len(rr)
		}
		n := 0
		for t, v := range r.responses {
			out.Responses[t] += v
			n += v
		}
		if n > 0 {
			out.PushedProxies++
		}
		for dst, src := range map[*map[string]int]map[string]int{&out.Resources: r.resources, &out.Bytes: r.bytes,
			&out.Removed: r.removed, &out.Unchanged: r.unchanged} {
			for t, v := range src {
				(*dst)[t] += v
			}
		}
		r.mu.Unlock()
	}
	return out
}

// run keeps the proxy's stream open until ctx ends, retrying refused
// streams after Envoy's backoff.
func (r *resumer) run(ctx context.Context, conn *grpc.ClientConn, o ResumeOptions) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		r.mu.Lock()
		r.streams++
		r.mu.Unlock()
		err := r.stream(ctx, conn, o.Delta)
		r.openedAt.Store(0)
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		r.refused++
		r.mu.Unlock()
		_ = err
		if !sleep(ctx, backoff(attempt, o.BackoffBase, o.BackoffMax)) {
			return
		}
	}
}

// adsStream is either protocol's client stream.
type adsStream interface {
	SendMsg(any) error
	RecvMsg(any) error
}

// stream opens one stream, presents what the proxy holds and ACKs every
// response until the stream or ctx ends.
func (r *resumer) stream(ctx context.Context, conn *grpc.ClientConn, delta bool) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client := discovery.NewAggregatedDiscoveryServiceClient(conn)
	var s adsStream
	var err error
	if delta {
		s, err = client.DeltaAggregatedResources(ctx, grpc.ForceCodecV2(rawCodec{delta: true}))
	} else {
		s, err = client.StreamAggregatedResources(ctx, grpc.ForceCodecV2(rawCodec{}))
	}
	if err != nil {
		return err
	}
	for _, t := range []string{"cds", "eds", "lds", "rds"} {
		if err := s.SendMsg(r.initial(t, delta)); err != nil {
			return err
		}
	}
	r.openedAt.Store(time.Now().UnixNano())
	r.lastAt.CompareAndSwap(0, time.Now().UnixNano())
	for {
		var resp rawResponse
		if err := s.RecvMsg(&resp); err != nil {
			if status.Code(err) == codes.Canceled || errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		r.lastAt.Store(time.Now().UnixNano())
		t := shortType(resp.typeURL)
		r.count(t, resp, delta)
		if err := s.SendMsg(r.ack(t, resp, delta)); err != nil {
			return err
		}
	}
}

// initial is the proxy's first request of type t on a new stream.
func (r *resumer) initial(t string, delta bool) any {
	withNode := t == "cds" || t == "lds"
	if delta {
		req := &discovery.DeltaDiscoveryRequest{TypeUrl: typeURLs[t], ResourceNamesSubscribe: r.held.Subscribed[t],
			InitialResourceVersions: r.held.Resources[t]}
		if withNode {
			req.Node = r.node
		}
		return req
	}
	req := &discovery.DiscoveryRequest{TypeUrl: typeURLs[t], VersionInfo: r.held.Versions[t], ResourceNames: r.held.Subscribed[t]}
	if withNode {
		req.Node = r.node
	}
	return req
}

// ack ACKs resp (of short type t).
func (r *resumer) ack(t string, resp rawResponse, delta bool) any {
	if delta {
		return &discovery.DeltaDiscoveryRequest{TypeUrl: resp.typeURL, ResponseNonce: resp.nonce}
	}
	return &discovery.DiscoveryRequest{TypeUrl: resp.typeURL, VersionInfo: resp.version, ResponseNonce: resp.nonce,
		ResourceNames: r.held.Subscribed[t]}
}

// count adds a response of short type t to the proxy's figures.
func (r *resumer) count(t string, resp rawResponse, delta bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.responses[t]++
	r.resources[t] += resp.resources
	r.bytes[t] += resp.bytes
	r.removed[t] += len(resp.removed)
	switch {
	case delta:
		for _, nv := range resp.named {
			if v, ok := r.held.Resources[t][nv.name]; ok && v != "" && v == nv.version {
				r.unchanged[t]++
			}
		}
	case resp.version != "" && resp.version == r.held.Versions[t]:
		r.unchanged[t] += resp.resources
	}
}

// rawCodec sends requests with gRPC's proto codec and reads responses
// with parseResponse only (the reconnection counts, it does not decode).
type rawCodec struct{ delta bool }

func (rawCodec) Name() string { return protocodec.Name }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2(protocodec.Name).Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	out, ok := v.(*rawResponse)
	if !ok {
		return encoding.GetCodecV2(protocodec.Name).Unmarshal(data, v)
	}
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		b = data.Materialize()
	}
	r, err := parseResponse(b, c.delta)
	*out = r
	return err
}

// Types lists the short types of a Resumed map that have any count, in
// xDS order.
func Types(ms ...map[string]int) []string {
	seen := map[string]bool{}
	for _, m := range ms {
		for t, v := range m {
			if v != 0 {
				seen[t] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}
