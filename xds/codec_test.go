package xds

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/require"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// testAny is an Any of n bytes of value.
func testAny(typeURL string, n int) *anypb.Any {
	return &anypb.Any{TypeUrl: typeURL, Value: bytes.Repeat([]byte{0x08}, n)} // n bytes, not a valid message: the codec must not look inside
}

// roundTrip encodes m with the codec and decodes it with protobuf.
func roundTrip(t *testing.T, m proto.Message) (mem.BufferSlice, proto.Message) {
	t.Helper()
	out, err := codec{}.Marshal(m)
	require.NoError(t, err)
	got := m.ProtoReflect().New().Interface()
	require.NoError(t, proto.Unmarshal(out.Materialize(), got))
	return out, got
}

func TestCodecSotWResponseEqualsProto(t *testing.T) {
	const rds = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	cases := map[string]*discovery.DiscoveryResponse{
		"empty":        {},
		"no resources": {VersionInfo: "v1", TypeUrl: rds, Nonce: "7"},
		"small and large": {VersionInfo: "v2", TypeUrl: rds, Nonce: "8", Canary: true,
			Resources:    []*anypb.Any{testAny(rds, 10), testAny(rds, 336<<10), testAny(rds, inlineMax), testAny(rds, inlineMax+1), {}, {TypeUrl: rds}},
			ControlPlane: &core.ControlPlane{Identifier: "meshd-0"}},
		"many": {VersionInfo: "v3", TypeUrl: rds, Nonce: "9", Resources: func() []*anypb.Any {
			var as []*anypb.Any
			for i := range 1000 {
				as = append(as, testAny(rds, 100+i))
			}
			return as
		}()},
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			_, got := roundTrip(t, m)
			require.True(t, proto.Equal(m, got), "decoded %v", got)
		})
	}
}

func TestCodecSotWSharesLargeValues(t *testing.T) {
	const rds = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	big := testAny(rds, 336<<10)
	m := &discovery.DiscoveryResponse{VersionInfo: "v", TypeUrl: rds, Nonce: "1", Resources: []*anypb.Any{testAny(rds, 5), big}}
	out, got := roundTrip(t, m)
	require.True(t, proto.Equal(m, got))
	shared := false
	for _, b := range out {
		if d := b.ReadOnlyData(); len(d) == len(big.Value) && unsafe.SliceData(d) == unsafe.SliceData(big.Value) {
			shared = true
		}
	}
	require.True(t, shared, "the 336 KB value must be referenced, not copied")
	require.Equal(t, proto.Size(m), out.Len())
}

func TestCodecDeltaResponseEqualsProto(t *testing.T) {
	const eds = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	m := &discovery.DeltaDiscoveryResponse{SystemVersionInfo: "s1", TypeUrl: eds, Nonce: "3",
		RemovedResources: []string{"gone"}, ControlPlane: &core.ControlPlane{Identifier: "meshd"},
		Resources: []*discovery.Resource{
			{Name: "a", Version: "1", Resource: testAny(eds, 40), Aliases: []string{"x"}, Ttl: durationpb.New(5)},
			{Name: "b", Version: "2", Resource: testAny(eds, 4096)},
			{Name: "c", Version: "3"}, // no body: a heartbeat
		}}
	_, got := roundTrip(t, m)
	require.True(t, proto.Equal(m, got), "decoded %v", got)
}

func TestCodecFallsBackForOtherMessages(t *testing.T) {
	// An Any with unknown fields is not plain: the default codec encodes it.
	a := testAny("t", 1000)
	a.ProtoReflect().SetUnknown([]byte{0x18, 0x01}) // field 3, varint 1
	for _, m := range []proto.Message{
		&discovery.DiscoveryResponse{Resources: []*anypb.Any{a}},
		&discovery.DiscoveryRequest{VersionInfo: "v", ErrorDetail: &rpcstatus.Status{Code: 3, Message: "bad"}},
	} {
		_, got := roundTrip(t, m)
		require.True(t, proto.Equal(m, got))
	}
}

func TestCodecInternsRequestNames(t *testing.T) {
	name := "outbound|8080||svc-1.bench-0.svc.cluster.local"
	req := &discovery.DiscoveryRequest{TypeUrl: "eds", ResourceNames: []string{name, "other"}}
	b, err := proto.Marshal(req)
	require.NoError(t, err)
	var decoded [2]*discovery.DiscoveryRequest
	for i := range decoded {
		decoded[i] = &discovery.DiscoveryRequest{}
		require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(bytes.Clone(b))}, decoded[i]))
		require.True(t, proto.Equal(req, decoded[i]))
	}
	require.True(t, unsafe.StringData(decoded[0].ResourceNames[0]) == unsafe.StringData(decoded[1].ResourceNames[0]),
		"two streams naming the same resource share one copy of the name")

	delta := &discovery.DeltaDiscoveryRequest{ResourceNamesSubscribe: []string{name}, ResourceNamesUnsubscribe: []string{name}}
	b, err = proto.Marshal(delta)
	require.NoError(t, err)
	got := &discovery.DeltaDiscoveryRequest{}
	require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got))
	require.True(t, proto.Equal(delta, got))
	require.True(t, unsafe.StringData(decoded[0].ResourceNames[0]) == unsafe.StringData(got.ResourceNamesSubscribe[0]))

}

func TestCodecRequestEqualsProto(t *testing.T) {
	for _, req := range []*discovery.DiscoveryRequest{
		{},
		{TypeUrl: "t", ResourceNames: []string{""}}, // an empty name is a name
		{VersionInfo: "v1", TypeUrl: "t", ResponseNonce: "n", ResourceNames: []string{"a", "b", "a", "never-seen-before-1"},
			Node:             &core.Node{Id: "sidecar~10.0.0.1~p.ns~ns.svc.cluster.local", Cluster: "c"},
			ErrorDetail:      &rpcstatus.Status{Code: 3, Message: "rejected"},
			ResourceLocators: []*discovery.ResourceLocator{{Name: "x"}}},
	} {
		b, err := proto.Marshal(req)
		require.NoError(t, err)
		got := &discovery.DiscoveryRequest{VersionInfo: "stale"}
		require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got))
		require.True(t, proto.Equal(req, got), "decoded %v", got)
		// Spread over several buffers (HTTP/2 frames), as a large ACK is.
		third := len(b) / 3
		split := mem.BufferSlice{mem.SliceBuffer(b[:third]), mem.SliceBuffer(b[third : 2*third]), mem.SliceBuffer(b[2*third:])}
		got = &discovery.DiscoveryRequest{}
		require.NoError(t, codec{}.Unmarshal(split, got))
		require.True(t, proto.Equal(req, got), "decoded from frames %v", got)
	}
	for name, b := range map[string][]byte{
		"truncated name": {0x1a, 0x05, 'a'},
		"truncated tag":  {0x80},
		"invalid UTF-8":  {0x1a, 0x02, 0xff, 0xfe},
		// An invalid version, then a valid one: protobuf rejects the
		// message whichever occurrence is invalid.
		"overwritten invalid UTF-8": {0x0a, 0x01, 0xff, 0x0a, 0x01, 'a'},
		"bad other field":           {0x22, 0x05, 'a'},
	} {
		require.Error(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &discovery.DiscoveryRequest{}), name)
	}
}

func TestInternTableIsBounded(t *testing.T) {
	tbl := &internTable{m: map[string]string{}}
	for i := range maxInterned + 10 {
		tbl.intern(strconv.Itoa(i))
	}
	require.LessOrEqual(t, len(tbl.m), maxInterned)
	long := strings.Repeat("n", maxInternedLen+1)
	tbl.intern(long)
	_, kept := tbl.m[long]
	require.False(t, kept, "a name longer than any resource name is not interned")
	a := tbl.intern(string([]byte("again")))
	require.True(t, unsafe.StringData(a) == unsafe.StringData(tbl.intern(string([]byte("again")))))
}

// BenchmarkCodecRouteResponse compares grpc-go's codec with meshd's on one
// 336 KB route configuration (the canary response at 1,000 services).
func BenchmarkCodecRouteResponse(b *testing.B) {
	const rds = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	m := &discovery.DiscoveryResponse{VersionInfo: "v", TypeUrl: rds, Nonce: "1", Resources: []*anypb.Any{testAny(rds, 336<<10)}}
	benchCodecs(b, m)
}

// BenchmarkCodecClusterResponse: 1,000 clusters of 500 bytes (CDS at connect).
func BenchmarkCodecClusterResponse(b *testing.B) {
	const cds = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
	m := &discovery.DiscoveryResponse{VersionInfo: "v", TypeUrl: cds, Nonce: "1"}
	for range 1000 {
		m.Resources = append(m.Resources, testAny(cds, 500))
	}
	benchCodecs(b, m)
}

func benchCodecs(b *testing.B, m proto.Message) {
	for name, c := range map[string]interface {
		Marshal(any) (mem.BufferSlice, error)
	}{"grpc": defaultCodec(), "meshd": codec{}} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				out, err := c.Marshal(m)
				if err != nil {
					b.Fatal(err)
				}
				out.Free()
			}
		})
	}
}

func TestCodecSharesRequestNameLists(t *testing.T) {
	var list, other []string
	for i := range 40 {
		list = append(list, "outbound|8080||svc-"+strconv.Itoa(i)+".ns.svc.cluster.local")
	}
	other = append(slices.Clone(list[:39]), "outbound|8080||elsewhere.ns.svc.cluster.local")
	decode := func(names []string) []string {
		b, err := proto.Marshal(&discovery.DiscoveryRequest{TypeUrl: "eds", ResourceNames: names})
		require.NoError(t, err)
		got := &discovery.DiscoveryRequest{}
		require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got))
		require.Equal(t, names, got.ResourceNames)
		return got.ResourceNames
	}
	a, b, c := decode(list), decode(list), decode(other)
	require.True(t, unsafe.SliceData(a) == unsafe.SliceData(b), "equal lists are one list")
	require.False(t, unsafe.SliceData(a) == unsafe.SliceData(c))
	require.Len(t, a, cap(a), "a shared list has no room to append into")

	short := []string{"a", "b"}
	require.False(t, unsafe.SliceData(decode(short)) == unsafe.SliceData(decode(short)), "short lists are not looked up")
}

func TestCodecFindsNameListsByEncoding(t *testing.T) {
	var names []string
	for i := range 30 {
		names = append(names, "outbound|9090||enc-"+strconv.Itoa(i)+".ns.svc.cluster.local")
	}
	b, err := proto.Marshal(&discovery.DiscoveryRequest{TypeUrl: "eds", VersionInfo: "v", ResourceNames: names})
	require.NoError(t, err)
	decode := func(b []byte) *discovery.DiscoveryRequest {
		got := &discovery.DiscoveryRequest{}
		require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(bytes.Clone(b))}, got))
		return got
	}
	first := decode(b)
	require.Equal(t, names, first.ResourceNames)
	sc, err := scanRequest(b, nil)
	require.NoError(t, err)
	require.Equal(t, 30, sc.count)
	require.NotNil(t, sc.run, "the names are one contiguous run")
	found := reqLists.byEncoding(sc.run)
	require.NotNil(t, found)
	require.True(t, unsafe.SliceData(found.list) == unsafe.SliceData(first.ResourceNames), "the list is remembered by its encoding")
	second := decode(b)
	require.True(t, unsafe.SliceData(second.ResourceNames) == unsafe.SliceData(first.ResourceNames))
	require.True(t, proto.Equal(first, second))

	// Names interleaved with another field are not one run: looked up one
	// by one, and still decoded exactly.
	var mixed []byte
	for i, n := range names {
		mixed = protowire.AppendString(protowire.AppendTag(mixed, 3, protowire.BytesType), n)
		if i == 10 {
			mixed = protowire.AppendString(protowire.AppendTag(mixed, 4, protowire.BytesType), "eds")
		}
	}
	sc, err = scanRequest(mixed, nil)
	require.NoError(t, err)
	require.Nil(t, sc.run)
	got := decode(mixed)
	require.Equal(t, names, got.ResourceNames)
	require.Equal(t, "eds", got.TypeUrl)
}

// TestCodecEncodedResponse: a response over marshalled resources encodes
// to the DiscoveryResponse itself, its resources referencing the entries
// (each Any's Value inside its entry), in order.
func TestCodecEncodedResponse(t *testing.T) {
	const rds = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
	var ms []marshalled
	for _, n := range []int{0, 1, inlineMax, 336 << 10, 200} {
		ms = append(ms, newMarshalled(rds, "r"+strconv.Itoa(n), bytes.Repeat([]byte{0x08}, n)))
	}
	resp := &discovery.DiscoveryResponse{VersionInfo: "v4", TypeUrl: rds, Nonce: "12", ControlPlane: &core.ControlPlane{Identifier: "meshd"}}
	for _, m := range ms {
		resp.Resources = append(resp.Resources, m.any)
		e := m.entry.ReadOnlyData()
		require.Equal(t, unsafe.SliceData(m.any.Value), unsafe.SliceData(e[len(e)-len(m.any.Value):]), "the value is the entry's tail")
	}
	enc := &encodedResponse{DiscoveryResponse: resp, entries: entriesOf(ms)}
	out, err := codec{}.Marshal(enc)
	require.NoError(t, err)
	require.Len(t, out, len(ms)+1)
	require.Equal(t, proto.Size(resp), out.Len())
	require.Equal(t, proto.Size(resp), enc.size())
	require.Len(t, resp.Resources, len(ms), "size leaves the response as it was")
	got := &discovery.DiscoveryResponse{}
	require.NoError(t, proto.Unmarshal(out.Materialize(), got))
	require.True(t, proto.Equal(resp, got), "decoded %v", got)

	// grpc-go's own codec (a server registered without Codec) encodes the
	// embedded DiscoveryResponse.
	plain, err := defaultCodec().Marshal(enc)
	require.NoError(t, err)
	got = &discovery.DiscoveryResponse{}
	require.NoError(t, proto.Unmarshal(plain.Materialize(), got))
	require.True(t, proto.Equal(resp, got), "decoded %v", got)
}

// TestCodecRequestHint: a stream's requests that repeat its last long list
// are recognised by the list's bytes; anything else is decoded in full,
// and every request decodes as protobuf decodes it.
func TestCodecRequestHint(t *testing.T) {
	var names []string
	for i := range 40 {
		names = append(names, "outbound|8080||hint-"+strconv.Itoa(i)+".ns.svc.cluster.local")
	}
	encode := func(m *discovery.DiscoveryRequest) []byte {
		b, err := proto.Marshal(m)
		require.NoError(t, err)
		return b
	}
	hint := &requestHint{}
	decode := func(b []byte) *discovery.DiscoveryRequest {
		got := &discovery.DiscoveryRequest{}
		require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(bytes.Clone(b))}, &hintedRequest{DiscoveryRequest: got, hint: hint}))
		want := &discovery.DiscoveryRequest{}
		require.NoError(t, proto.Unmarshal(b, want))
		require.True(t, proto.Equal(want, got), "decoded %v", got)
		return got
	}
	eds := resourcev3.EndpointType
	first := decode(encode(&discovery.DiscoveryRequest{TypeUrl: eds, ResourceNames: names}))
	require.NotNil(t, hint.last)
	require.True(t, unsafe.SliceData(hint.last.list) == unsafe.SliceData(first.ResourceNames))

	ack := encode(&discovery.DiscoveryRequest{VersionInfo: "v2", TypeUrl: eds, ResponseNonce: "7", ResourceNames: names})
	sc, err := scanRequest(ack, hint.last)
	require.NoError(t, err)
	require.True(t, sc.hinted, "an ACK repeating the list is recognised by the hint")
	got := decode(ack)
	require.True(t, unsafe.SliceData(got.ResourceNames) == unsafe.SliceData(first.ResourceNames))

	// Requests of other types (no names) leave the hint alone.
	decode(encode(&discovery.DiscoveryRequest{VersionInfo: "c1", TypeUrl: resourcev3.ClusterType, ResponseNonce: "8"}))
	require.True(t, unsafe.SliceData(hint.last.list) == unsafe.SliceData(first.ResourceNames))

	// The list and more names; fewer names; the same names then another
	// field then more names; a different last name: none is the hint's.
	more := append(slices.Clone(names), "outbound|8080||extra.ns.svc.cluster.local")
	for name, b := range map[string][]byte{
		"longer":  encode(&discovery.DiscoveryRequest{TypeUrl: eds, ResourceNames: more}),
		"shorter": encode(&discovery.DiscoveryRequest{TypeUrl: eds, ResourceNames: names[:39]}),
		"split": protowire.AppendString(protowire.AppendTag(
			encode(&discovery.DiscoveryRequest{VersionInfo: "v", ResourceNames: names, TypeUrl: eds}), 3, protowire.BytesType), "late"),
		"changed": encode(&discovery.DiscoveryRequest{TypeUrl: eds, ResourceNames: append(slices.Clone(names[:39]), "other")}),
	} {
		hint.last = reqLists.byEncoding(mustRun(t, encode(&discovery.DiscoveryRequest{ResourceNames: names})))
		require.NotNil(t, hint.last, name)
		sc, err := scanRequest(b, hint.last)
		require.NoError(t, err, name)
		require.False(t, sc.hinted, name)
		decode(b)
	}
}

func mustRun(t *testing.T, b []byte) []byte {
	t.Helper()
	sc, err := scanRequest(b, nil)
	require.NoError(t, err)
	require.NotNil(t, sc.run)
	return sc.run
}

// FuzzRequestDecode: every input decodes as protobuf decodes it (or fails
// where it fails), with or without a hint primed by another request.
func FuzzRequestDecode(f *testing.F) {
	var names []string
	for i := range 20 {
		names = append(names, "n"+strconv.Itoa(i))
	}
	seed := func(m *discovery.DiscoveryRequest) []byte {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		return b
	}
	prime := seed(&discovery.DiscoveryRequest{TypeUrl: "t", ResourceNames: names})
	f.Add(prime, prime)
	f.Add(seed(&discovery.DiscoveryRequest{VersionInfo: "v", TypeUrl: "t", ResponseNonce: "1", ResourceNames: names}), prime)
	f.Add(seed(&discovery.DiscoveryRequest{ResourceNames: append(slices.Clone(names), "x")}), prime)
	f.Add(seed(&discovery.DiscoveryRequest{ResourceNames: names[:19]}), prime)
	f.Add(seed(&discovery.DiscoveryRequest{Node: &core.Node{Id: "a"}, ResourceNames: names}), prime)
	f.Add([]byte{0x0a, 0x01, 0xff, 0x0a, 0x01, 'a'}, prime)
	f.Add([]byte{0x1a, 0x01, 'a', 0x08, 0x01}, []byte{})
	f.Fuzz(func(t *testing.T, b, primer []byte) {
		hint := &requestHint{}
		_ = unmarshalHinted(bytes.Clone(primer), &discovery.DiscoveryRequest{}, hint)
		want := &discovery.DiscoveryRequest{}
		werr := proto.Unmarshal(b, want)
		in := bytes.Clone(b)
		got := &discovery.DiscoveryRequest{VersionInfo: "stale"}
		gerr := unmarshalHinted(in, got, hint)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%x: protobuf: %v, meshd: %v", b, werr, gerr)
		}
		if werr != nil {
			return
		}
		clear(in) // nothing decoded may alias the input
		if !proto.Equal(want, got) {
			t.Fatalf("%x: protobuf %v, meshd %v", b, want, got)
		}
	})
}

// TestCodecDeltaOut: a delta response over marshalled resources encodes
// to the DeltaDiscoveryResponse it stands for — each Resource its name,
// its hash as version and its Any — with each resource's delta encoding
// referenced (its value inside it, its state-of-the-world entry its
// tail), and encodeHead gives its size.
func TestCodecDeltaOut(t *testing.T) {
	const eds = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
	var ms []marshalled
	for _, n := range []int{0, 1, inlineMax, 336 << 10, 200} {
		ms = append(ms, newMarshalled(eds, "outbound|8080||a"+strconv.Itoa(n)+".shop.svc.cluster.local", bytes.Repeat([]byte{0x08}, n)))
	}
	ms = append(ms, newMarshalled(eds, "", []byte{0x08, 0x01})) // no name
	out := &deltaOut{version: "eds-4", typeURL: eds, nonce: "12", res: ms, removed: []string{"gone", "also-gone"}}
	want := &discovery.DeltaDiscoveryResponse{SystemVersionInfo: "eds-4", TypeUrl: eds, Nonce: "12", RemovedResources: []string{"gone", "also-gone"}}
	for _, m := range ms {
		name := ""
		if m != ms[len(ms)-1] {
			name = "outbound|8080||a" + strconv.Itoa(len(m.any.Value)) + ".shop.svc.cluster.local"
		}
		want.Resources = append(want.Resources, &discovery.Resource{Name: name, Version: m.hash, Resource: m.any})
		d, e := m.delta.ReadOnlyData(), m.entry.ReadOnlyData()
		require.Equal(t, unsafe.SliceData(e), unsafe.SliceData(d[len(d)-len(e):]), "the entry is the delta encoding's tail")
		require.Equal(t, unsafe.SliceData(m.any.Value), unsafe.SliceData(d[len(d)-len(m.any.Value):]), "the value is its tail")
		require.Len(t, m.hash, hashLen)
	}
	enc, err := codec{}.Marshal(out)
	require.NoError(t, err)
	require.Len(t, enc, len(ms)+1, "the head, then each resource by reference")
	size, err := out.encodeHead()
	require.NoError(t, err)
	require.Equal(t, proto.Size(want), enc.Len())
	require.Equal(t, proto.Size(want), size)
	got := &discovery.DeltaDiscoveryResponse{}
	require.NoError(t, proto.Unmarshal(enc.Materialize(), got))
	require.True(t, proto.Equal(want, got), "decoded %v", got)

	_, err = defaultCodec().Marshal(out)
	require.Error(t, err, "another codec refuses it rather than send it empty")
}
