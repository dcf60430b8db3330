package fleet

import (
	"context"
	"strings"
	"unique"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
)

// Delta proxies must present what they hold when they reconnect
// (initial_resource_versions), and internal/xdsclient keeps the names it
// holds but not their versions. With Options.TrackVersions the fleet
// reads each delta response's resource names and versions from its
// encoding as it arrives (trackingCodec, in front of the client's own
// codec) and keeps them per proxy and type.

// intern returns b as a string shared by every proxy (the same names and
// versions recur across thousands of proxies).
func intern(b []byte) string { return unique.Make(string(b)).Value() }

// trackingConn hands proxy p's delta streams a codec that records the
// versions of what they receive.
type trackingConn struct {
	*grpc.ClientConn
	p *Proxy
}

// NewStream opens the stream with the tracking codec in front of the
// codec the caller asked for.
func (t trackingConn) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	if !strings.HasSuffix(method, "/DeltaAggregatedResources") {
		return t.ClientConn.NewStream(ctx, desc, method, opts...)
	}
	out := make([]grpc.CallOption, 0, len(opts)+1)
	var inner encoding.CodecV2
	for _, o := range opts {
		if fc, ok := o.(grpc.ForceCodecV2CallOption); ok {
			inner = fc.CodecV2
			continue
		}
		out = append(out, o)
	}
	if inner == nil {
		inner = encoding.GetCodecV2(protocodec.Name)
	}
	out = append(out, grpc.ForceCodecV2(trackingCodec{inner: inner, p: t.p}))
	return t.ClientConn.NewStream(ctx, desc, method, out...)
}

// trackingCodec records, before the inner codec decodes a response, the
// names and versions of its resources and its removals.
type trackingCodec struct {
	inner encoding.CodecV2
	p     *Proxy
}

func (c trackingCodec) Name() string                           { return c.inner.Name() }
func (c trackingCodec) Marshal(v any) (mem.BufferSlice, error) { return c.inner.Marshal(v) }

func (c trackingCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData() // read only here, before the inner codec runs
	} else {
		b = data.Materialize()
	}
	if r, err := parseResponse(b, true); err == nil && r.typeURL != "" {
		c.p.track(shortType(r.typeURL), r.named, r.removed)
	}
	return c.inner.Unmarshal(data, v)
}

// track records delta resources received and removed by type t.
func (p *Proxy) track(t string, named []namedVersion, removed []string) {
	if t == "" {
		return
	}
	p.vmu.Lock()
	defer p.vmu.Unlock()
	if p.versions == nil {
		p.versions = map[string]map[string]string{}
	}
	m := p.versions[t]
	if m == nil {
		m = make(map[string]string, len(named))
		p.versions[t] = m
	}
	for _, nv := range named {
		m[nv.name] = nv.version
	}
	for _, n := range removed {
		delete(m, n)
	}
}

// trackedVersion is the version of resource name of type t proxy p last
// received ("" if unknown).
func (p *Proxy) trackedVersion(t, name string) string {
	p.vmu.Lock()
	defer p.vmu.Unlock()
	return p.versions[t][name]
}

// typeURLs are the four types' URLs by short name.
var typeURLs = map[string]string{
	"cds": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
	"eds": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
	"lds": "type.googleapis.com/envoy.config.listener.v3.Listener",
	"rds": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
}

func shortType(url string) string {
	for s, u := range typeURLs {
		if u == url {
			return s
		}
	}
	return ""
}
