package xdsclient

import (
	"context"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"
	"unique"
	"unsafe"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
)

func testCodec() codec { return codec{fallback: encoding.GetCodecV2("proto")} }

// chunked splits b into buffers of at most n bytes, as gRPC may hand a
// message to a codec.
func chunked(b []byte, n int) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 0 {
		k := min(n, len(b))
		s = append(s, mem.SliceBuffer(b[:k]))
		b = b[k:]
	}
	return s
}

func withUnknown(m proto.Message, num protowire.Number, s string) proto.Message {
	b := protowire.AppendTag(nil, num, protowire.BytesType)
	m.ProtoReflect().SetUnknown(protowire.AppendString(b, s))
	return m
}

func sotwCases() []*discovery.DiscoveryResponse {
	cla := &anypb.Any{TypeUrl: resourcev3.EndpointType, Value: []byte{0x0a, 0x01, 'x'}}
	return []*discovery.DiscoveryResponse{
		{},
		{VersionInfo: "v1", TypeUrl: resourcev3.EndpointType, Nonce: "1", Resources: []*anypb.Any{cla}},
		{VersionInfo: "2024-01-01T00:00:00Z/7", TypeUrl: resourcev3.ClusterType, Nonce: "ñ-42", Canary: true,
			Resources: []*anypb.Any{cla, {}, {TypeUrl: resourcev3.ClusterType}, {Value: make([]byte, 70000)},
				withUnknown(&anypb.Any{TypeUrl: "t", Value: []byte{1}}, 9, "future").(*anypb.Any)},
			ControlPlane: &core.ControlPlane{Identifier: "meshd-0"},
			ResourceErrors: []*discovery.ResourceError{{ResourceName: &discovery.ResourceName{Name: "a"},
				ErrorDetail: &rpcstatus.Status{Code: 5, Message: "not found"}}}},
		withUnknown(&discovery.DiscoveryResponse{Nonce: "n"}, 100, "later field").(*discovery.DiscoveryResponse),
	}
}

func deltaCases() []*discovery.DeltaDiscoveryResponse {
	md, _ := structpb.NewStruct(map[string]any{"k": "v"})
	return []*discovery.DeltaDiscoveryResponse{
		{},
		{SystemVersionInfo: "v1", TypeUrl: resourcev3.RouteType, Nonce: "3", Resources: []*discovery.Resource{
			{Name: "8080", Version: "abc", Resource: &anypb.Any{TypeUrl: resourcev3.RouteType, Value: []byte{0x0a, 0x04, '8', '0', '8', '0'}}}}},
		{TypeUrl: resourcev3.ClusterType, Nonce: "4", RemovedResources: []string{"a", "outbound|8080||b"},
			RemovedResourceNames: []*discovery.ResourceName{{Name: "c"}},
			ControlPlane:         &core.ControlPlane{Identifier: "meshd"},
			ResourceErrors:       []*discovery.ResourceError{{ErrorDetail: &rpcstatus.Status{Message: "x"}}},
			Resources: []*discovery.Resource{
				{Name: "heartbeat", Version: "1", Ttl: durationpb.New(time.Minute)},
				{Name: "full", Version: "2", Aliases: []string{"x", "y"}, Ttl: durationpb.New(time.Second),
					CacheControl: &discovery.Resource_CacheControl{DoNotCache: true},
					ResourceName: &discovery.ResourceName{Name: "full"},
					Metadata:     &core.Metadata{FilterMetadata: map[string]*structpb.Struct{"f": md}},
					Resource:     &anypb.Any{TypeUrl: resourcev3.ClusterType, Value: make([]byte, 500)}},
				withUnknown(&discovery.Resource{Name: "u"}, 50, "z").(*discovery.Resource),
			}},
	}
}

// roundTrip marshals want, decodes it with the codec (whole and in 7-byte
// chunks) through a received wrapper, and checks the result and size.
func roundTrip[M proto.Message](t *testing.T, want M, fresh func() M) {
	t.Helper()
	b, err := proto.Marshal(want)
	require.NoError(t, err)
	for _, data := range []mem.BufferSlice{{mem.SliceBuffer(b)}, chunked(b, 7)} {
		got := fresh()
		r := received{msg: got}
		require.NoError(t, testCodec().Unmarshal(data, &r))
		assert.True(t, proto.Equal(want, got), "want %v\ngot  %v", want, got)
		assert.Equal(t, len(b), r.size)
		assert.Equal(t, proto.Size(want), r.size)
	}
}

// TestCodecRoundTrip: what proto.Marshal encodes, the codec decodes into an
// equal message (unknown fields included), recording the encoded size.
func TestCodecRoundTrip(t *testing.T) {
	for _, want := range sotwCases() {
		roundTrip(t, want, func() *discovery.DiscoveryResponse { return &discovery.DiscoveryResponse{} })
	}
	for _, want := range deltaCases() {
		roundTrip(t, want, func() *discovery.DeltaDiscoveryResponse { return &discovery.DeltaDiscoveryResponse{} })
	}
}

// TestCodecMergesLikeProto: a message repeated on the wire (concatenated
// encodings) decodes as proto.Unmarshal decodes it, and the codec resets a
// message it decodes into.
func TestCodecMergesLikeProto(t *testing.T) {
	var b []byte
	for _, m := range deltaCases() {
		b, _ = proto.MarshalOptions{}.MarshalAppend(b, m)
	}
	// The same resource twice in one Resource: its Any merges.
	r1, _ := proto.Marshal(&discovery.Resource{Name: "r", Resource: &anypb.Any{TypeUrl: "a", Value: []byte{1}}})
	r2, _ := proto.Marshal(&discovery.Resource{Version: "2", Resource: &anypb.Any{TypeUrl: "b"}})
	b = protowire.AppendBytes(protowire.AppendTag(b, deltaResources, protowire.BytesType), append(r1, r2...))
	want := &discovery.DeltaDiscoveryResponse{}
	require.NoError(t, proto.Unmarshal(b, want))
	got := &discovery.DeltaDiscoveryResponse{Nonce: "stale", RemovedResources: []string{"stale"}}
	require.NoError(t, testCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got))
	assert.True(t, proto.Equal(want, got), "want %v\ngot  %v", want, got)
	last := got.GetResources()[len(got.GetResources())-1]
	assert.Equal(t, "b", last.GetResource().GetTypeUrl())
	assert.Equal(t, []byte{1}, last.GetResource().GetValue())
}

// TestCodecOwnsItsBuffer: the decoded message does not alias gRPC's
// buffers (they are freed after Unmarshal), an Any's value cannot be
// appended to over its neighbour, and the response's type URL is interned.
func TestCodecOwnsItsBuffer(t *testing.T) {
	want := sotwCases()[2]
	b, err := proto.Marshal(want)
	require.NoError(t, err)
	got := &discovery.DiscoveryResponse{}
	require.NoError(t, testCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got))
	clear(b)
	assert.True(t, proto.Equal(want, got))
	v := got.GetResources()[0].GetValue()
	assert.Equal(t, len(v), cap(v))
	// unique keeps a value while a Handle to it lives: hold one.
	h := unique.Make(resourcev3.ClusterType)
	again := &discovery.DiscoveryResponse{}
	require.NoError(t, testCodec().Unmarshal(chunked(mustMarshal(t, want), 3), again))
	assert.Same(t, unsafe.StringData(h.Value()), unsafe.StringData(again.GetTypeUrl()))
	runtime.KeepAlive(h)
}

// TestDecodeInternsAliasedNames: the names of delta resources alias the
// response's buffer; decode replaces them by interned copies (with a body
// or without), so that what the client holds does not keep the buffer.
func TestDecodeInternsAliasedNames(t *testing.T) {
	body, err := anypb.New(&endpoint.ClusterLoadAssignment{ClusterName: "with-body"})
	require.NoError(t, err)
	want := &discovery.DeltaDiscoveryResponse{TypeUrl: resourcev3.EndpointType, Resources: []*discovery.Resource{
		{Name: "with-body", Resource: body}, {Name: "without-body"}}}
	resp := &discovery.DeltaDiscoveryResponse{}
	require.NoError(t, testCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(mustMarshal(t, want))}, resp))
	u := &update{delta: true, res: []resource{{name: resp.Resources[0].Name, any: resp.Resources[0].Resource},
		{name: resp.Resources[1].Name}}}
	handles := []unique.Handle[string]{unique.Make("with-body"), unique.Make("without-body")}
	require.NoError(t, decode("eds", u))
	for i, h := range handles {
		assert.Equal(t, h.Value(), u.res[i].name)
		assert.Same(t, unsafe.StringData(h.Value()), unsafe.StringData(u.res[i].name))
		assert.NotSame(t, unsafe.StringData(resp.Resources[i].Name), unsafe.StringData(u.res[i].name))
	}
	runtime.KeepAlive(handles)
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	require.NoError(t, err)
	return b
}

// TestCodecDelegates: requests and other messages go to gRPC's proto codec,
// and the codec keeps the proto content-subtype.
func TestCodecDelegates(t *testing.T) {
	c := testCodec()
	assert.Equal(t, "proto", c.Name())
	req := &discovery.DiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResourceNames: []string{"a"},
		Node: &core.Node{Id: "n"}}
	data, err := c.Marshal(req)
	require.NoError(t, err)
	got := &discovery.DiscoveryRequest{}
	require.NoError(t, c.Unmarshal(data, got))
	assert.True(t, proto.Equal(req, got))
	resp, err := c.Marshal(sotwCases()[2])
	require.NoError(t, err)
	assert.Equal(t, mustMarshal(t, sotwCases()[2]), resp.Materialize())
	assert.Error(t, c.Unmarshal(data, "not a message"))
}

// TestCodecSizeOnTheStream: on a real stream, the size a response is
// reported with is its encoded size (what proto.Size said before).
func TestCodecSizeOnTheStream(t *testing.T) {
	f := &fakeDelta{resources: mesh(), reqs: make(chan *discovery.DeltaDiscoveryRequest, 64),
		push: make(chan *discovery.DeltaDiscoveryResponse)}
	var mu sync.Mutex
	var got []Response
	c, err := StartWith(serve(t, f), "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", map[string]any{"NAMESPACE": "ns"},
		Options{Delta: true, OnResponse: func(_ *Client, r Response) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, r)
		}})
	require.NoError(t, err)
	defer c.Close()
	go func() {
		for range f.reqs {
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Wait(ctx, (*Client).Complete))
	push := &discovery.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, SystemVersionInfo: "v2",
		ControlPlane: &core.ControlPlane{Identifier: "meshd"}, RemovedResources: []string{"outbound|8080|v1|a"},
		Resources: []*discovery.Resource{deltaResource(mesh()[resourcev3.ClusterType][0])}}
	want := proto.Clone(push).(*discovery.DeltaDiscoveryResponse)
	f.push <- push
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return got[len(got)-1].Version == "v2" },
		5*time.Second, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	r := got[len(got)-1]
	want.Nonce = r.Nonce
	assert.Equal(t, proto.Size(want), r.Bytes)
	assert.Equal(t, []string{"outbound|8080||a"}, r.Names)
	assert.Equal(t, []string{"outbound|8080|v1|a"}, r.Removed)
}

// TestCodecRejectsMalformed: truncated data, wrong wire types, invalid
// UTF-8 and malformed nested messages are errors.
func TestCodecRejectsMalformed(t *testing.T) {
	tag := func(b []byte, num protowire.Number, typ protowire.Type) []byte {
		return protowire.AppendTag(b, num, typ)
	}
	str := func(num protowire.Number, s string) []byte {
		return protowire.AppendString(tag(nil, num, protowire.BytesType), s)
	}
	nested := func(num protowire.Number, inner []byte) []byte {
		return protowire.AppendBytes(tag(nil, num, protowire.BytesType), inner)
	}
	badSotW := map[string][]byte{
		"bad tag":                  {0xff},
		"field number 0":           {0x02, 0x00},
		"end group":                tag(nil, 9, protowire.EndGroupType),
		"overlong varint":          append(tag(nil, respCanary, protowire.VarintType), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
		"length past the end":      {0x22, 0x05, 'a'},
		"type_url as varint":       protowire.AppendVarint(tag(nil, respTypeURL, protowire.VarintType), 1),
		"resources as fixed32":     protowire.AppendFixed32(tag(nil, respResources, protowire.Fixed32Type), 1),
		"canary as bytes":          str(respCanary, "t"),
		"Any value as varint":      nested(respResources, protowire.AppendVarint(tag(nil, anyValue, protowire.VarintType), 1)),
		"version_info not UTF-8":   str(respVersionInfo, "v\xff"),
		"nonce not UTF-8":          str(respNonce, "\xc3"),
		"type_url not UTF-8":       str(respTypeURL, "\xed\xa0\x80"), // a surrogate
		"Any type_url not UTF-8":   nested(respResources, str(anyTypeURL, "t\xfe")),
		"truncated Any":            nested(respResources, []byte{0x12, 0x09, 1}),
		"malformed control plane":  nested(respControlPlane, []byte{0x0a, 0x01, 0xff}),
		"malformed resource error": nested(respResourceErrors, []byte{0xff}),
	}
	for name, b := range badSotW {
		err := testCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &discovery.DiscoveryResponse{})
		assert.Error(t, err, name)
	}
	badDelta := map[string][]byte{
		"removed name not UTF-8":  str(deltaRemovedResources, "\xff"),
		"resource name not UTF-8": nested(deltaResources, str(resName, "\xff")),
		"alias not UTF-8":         nested(deltaResources, str(resAliases, "\x80")),
		"resource as varint":      protowire.AppendVarint(tag(nil, deltaResources, protowire.VarintType), 1),
		"malformed TTL":           nested(deltaResources, nested(resTTL, []byte{0x08})),
		"malformed resource Any":  nested(deltaResources, nested(resResource, []byte{0x0a, 0x02})),
		"removed names malformed": nested(deltaRemovedResourceNames, []byte{0x0a, 0x01}),
	}
	for name, b := range badDelta {
		err := testCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &discovery.DeltaDiscoveryResponse{})
		assert.Error(t, err, name)
	}
}

// TestCodecAgreesWithProto: every prefix and many random corruptions of
// valid encodings decode without panicking, and whatever the codec accepts
// proto.Unmarshal accepts too, with an equal result; whatever
// proto.Unmarshal rejects, the codec rejects.
func TestCodecAgreesWithProto(t *testing.T) {
	var msgs [][]byte
	for _, m := range sotwCases() {
		msgs = append(msgs, mustMarshal(t, m))
	}
	for _, m := range deltaCases() {
		msgs = append(msgs, mustMarshal(t, m))
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i, b := range msgs {
		fresh := func() proto.Message { return &discovery.DiscoveryResponse{} }
		if i >= len(sotwCases()) {
			fresh = func() proto.Message { return &discovery.DeltaDiscoveryResponse{} }
		}
		if len(b) > 2000 {
			b = b[:2000] // a prefix keeps the test quick
		}
		for n := range len(b) {
			agree(t, b[:n], fresh)
		}
		for range 300 {
			c := append([]byte(nil), b...)
			for range 1 + rng.IntN(3) {
				if len(c) > 0 {
					c[rng.IntN(len(c))] = byte(rng.Uint32())
				}
			}
			agree(t, c, fresh)
		}
	}
}

func agree(t *testing.T, b []byte, fresh func() proto.Message) {
	t.Helper()
	want, got := fresh(), fresh()
	wantErr := proto.Unmarshal(b, want)
	var gotErr error
	require.NotPanics(t, func() { gotErr = testCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got) }, "%x", b)
	if gotErr == nil {
		require.NoError(t, wantErr, "the codec accepted what proto rejects: %x", b)
		require.True(t, proto.Equal(want, got), "%x", b)
	}
	if wantErr != nil {
		require.Error(t, gotErr, "%x", b)
	}
}

// TestPooledBuffers: large responses are decoded from pooled buffers of
// the right size class, and what the client keeps from a response
// survives the buffer's reuse by the next one.
func TestPooledBuffers(t *testing.T) {
	for _, n := range []int{minPooled, minPooled + 1, 2 * minPooled, 336 << 10, maxPooled} {
		b := responseBufs.Get(n)
		require.NotNil(t, b, "size %d", n)
		require.GreaterOrEqual(t, len(*b), n)
		require.Less(t, len(*b), 2*n, "size %d: the class is the next power of two", n)
		responseBufs.Put(b)
	}
	require.Nil(t, responseBufs.Get(minPooled-1))
	require.Nil(t, responseBufs.Get(maxPooled+1))

	const rds = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	response := func(name string) mem.BufferSlice {
		// A route configuration named name, padded with an unknown 200 KB
		// field: large enough to be decoded from a pooled buffer.
		value := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), name)
		value = protowire.AppendBytes(protowire.AppendTag(value, 99, protowire.BytesType), make([]byte, 200<<10))
		b, err := proto.Marshal(&discovery.DiscoveryResponse{VersionInfo: "v-" + name, TypeUrl: rds, Nonce: "n-" + name,
			Resources: []*anypb.Any{{TypeUrl: rds, Value: value}}})
		require.NoError(t, err)
		return chunked(b, 16<<10)
	}
	var kept []string
	for _, name := range []string{"first-route", "second-route"} {
		resp := &discovery.DiscoveryResponse{}
		r := received{msg: resp}
		require.NoError(t, testCodec().Unmarshal(response(name), &r))
		require.NotNil(t, r.buf, "a 200 KB response is decoded from a pooled buffer")
		u := &update{typeURL: resp.GetTypeUrl(), version: resp.GetVersionInfo(), nonce: resp.GetNonce(),
			res: []resource{{any: resp.GetResources()[0]}}, buf: r.buf}
		require.NoError(t, decode("rds", u))
		kept = append(kept, u.res[0].name, u.version, u.nonce)
		responseBufs.Put(u.buf)
	}
	assert.Equal(t, []string{"first-route", "v-first-route", "n-first-route", "second-route", "v-second-route", "n-second-route"}, kept)
}
