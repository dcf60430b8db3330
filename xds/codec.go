package xds

import (
	"sync"
	"unicode/utf8"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshd/meshd/internal/bufpool"
	"github.com/meshd/meshd/internal/protoutil"
)

// Codec returns the gRPC server option meshd's ADS server runs with. Its
// codec is grpc-go's proto codec except for two messages:
//
//   - Responses over published resources (encodedResponse, deltaOut; a
//     DiscoveryResponse of plain Anys too) are encoded without copying
//     their resources: the encoding is a list of buffers in which each
//     resource's bytes are its shared encoding (entry.go), sent to every
//     stream it goes to. Other messages (a delta debug reply) take
//     grpc-go's codec. grpc-go's codec marshals each response
//     into a fresh buffer (a 336 KB route configuration sent to 2,000
//     proxies is 670 MB of copies, held until each transport has written
//     it); meshd's resources are immutable once published, so the streams
//     can share them.
//   - Requests (DiscoveryRequest, DeltaDiscoveryRequest) get their resource
//     names (and a delta request's initial versions) interned as they are
//     decoded: a state-of-the-world EDS request names every cluster the
//     proxy watches, so does a delta stream's first EDS request, and
//     thousands of proxies name the same ones.
func Codec() grpc.ServerOption { return grpc.ForceServerCodecV2(codec{}) }

// codec is the encoding.CodecV2 behind Codec.
type codec struct{}

// Name is the content subtype this codec serves: proto, as the default.
func (codec) Name() string { return grpcproto.Name }

// inlineMax is the size up to which a resource's value is copied into the
// response's own buffer rather than referenced: below it a separate buffer
// costs more than the copy.
const inlineMax = 128

// Marshal encodes v; responses by reference to their resources' bytes.
func (codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *encodedResponse:
		return marshalEncoded(m)
	case *discovery.DiscoveryResponse:
		if anysPlain(m.GetResources()) {
			return marshalSotW(m)
		}
	case *deltaOut:
		return marshalDeltaOut(m)
	}
	return defaultCodec().Marshal(v)
}

// Unmarshal decodes data into v, interning request resource names.
func (codec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *discovery.DiscoveryRequest:
		return unmarshalFrames(data, m, nil)
	case *hintedRequest:
		return unmarshalFrames(data, m.DiscoveryRequest, m.hint)
	case *discovery.DeltaDiscoveryRequest:
		return joined(data, func(b []byte) error { return unmarshalDeltaRequest(b, m) })
	}
	return defaultCodec().Unmarshal(data, v)
}

// requestBufs holds the buffers a request spread over several HTTP/2
// frames is joined in (a state-of-the-world EDS ACK naming 1,000 clusters
// is ~60 KB): grpc-go's default pool would hand out a 1 MB buffer and
// zero all of it first, for every ACK. Nothing decoded from them aliases
// them (names are interned, the rest copied).
var requestBufs = bufpool.New(4<<10, 1<<20)

// unmarshalFrames decodes a request from the frames it came in.
func unmarshalFrames(data mem.BufferSlice, m *discovery.DiscoveryRequest, hint *requestHint) error {
	return joined(data, func(b []byte) error { return unmarshalHinted(b, m, hint) })
}

// joined calls decode with data's bytes in one slice: the frame's own when
// there is one, else a pooled buffer they are copied to, valid only
// during the call.
func joined(data mem.BufferSlice, decode func([]byte) error) error {
	if len(data) == 1 {
		return decode(data[0].ReadOnlyData())
	}
	n := data.Len()
	buf := requestBufs.Get(n)
	if buf == nil {
		b := make([]byte, n)
		buf = &b
	}
	defer requestBufs.Put(buf)
	b := (*buf)[:n]
	data.CopyTo(b)
	return decode(b)
}

var (
	defaultOnce sync.Once
	defaultV2   encoding.CodecV2
)

// defaultCodec is grpc-go's registered proto codec.
func defaultCodec() encoding.CodecV2 {
	defaultOnce.Do(func() { defaultV2 = encoding.GetCodecV2(grpcproto.Name) })
	return defaultV2
}

// anysPlain reports whether every Any is a type URL and a value and
// nothing else (no unknown fields), so that encoding it field by field is
// exactly what proto.Marshal would produce.
func anysPlain(as []*anypb.Any) bool {
	for _, a := range as {
		if a == nil || len(a.ProtoReflect().GetUnknown()) > 0 || !utf8.ValidString(a.GetTypeUrl()) {
			return false
		}
	}
	return true
}

// Field numbers written by hand.
const (
	sotwResources  = 2 // DiscoveryResponse.resources
	deltaResources = 2 // DeltaDiscoveryResponse.resources
	resourceAny    = 2 // Resource.resource
	anyTypeURL     = 1 // Any.type_url
	anyValue       = 2 // Any.value
)

// marshalSotW writes every field but resources with proto.Marshal (a
// shallow copy without them), then each resource as an embedded Any.
// Protobuf accepts fields in any order, so the concatenation is the
// message.
func marshalSotW(m *discovery.DiscoveryResponse) (mem.BufferSlice, error) {
	b, err := marshalExcept(m, sotwResources)
	if err != nil {
		return nil, err
	}
	extra, refs := inlineSize(m.Resources, protowire.SizeTag(sotwResources))
	w := newSliceWriter(b, extra, refs)
	for _, a := range m.Resources {
		w.buf = protowire.AppendTag(w.buf, sotwResources, protowire.BytesType)
		w.buf = protowire.AppendVarint(w.buf, uint64(anySize(a)))
		w.any(a)
	}
	return w.done(), nil
}

// deltaOut is a delta response over marshalled resources: its head
// fields, the resources (each sent as its delta encoding, shared by every
// stream, not copied) and the names removed. meshd's codec encodes it as
// the DeltaDiscoveryResponse it stands for; it is no proto.Message, so a
// server without Codec fails to send it rather than send it empty.
type deltaOut struct {
	version, typeURL, nonce string
	res                     []marshalled
	removed                 []string
	head                    []byte // encodeHead's
}

// encodeHead encodes the response's fields but its resources, once, and
// returns the encoded size of the whole response.
func (m *deltaOut) encodeHead() (int, error) {
	if m.head == nil {
		head, err := proto.Marshal(&discovery.DeltaDiscoveryResponse{SystemVersionInfo: m.version, TypeUrl: m.typeURL,
			Nonce: m.nonce, RemovedResources: m.removed})
		if err != nil {
			return 0, err
		}
		m.head = head
	}
	n := len(m.head)
	for _, r := range m.res {
		n += r.delta.Len()
	}
	return n, nil
}

// marshalDeltaOut writes the head, then each resource's delta encoding
// by reference (protobuf accepts fields in any order).
func marshalDeltaOut(m *deltaOut) (mem.BufferSlice, error) {
	if _, err := m.encodeHead(); err != nil {
		return nil, err
	}
	out := make(mem.BufferSlice, 0, len(m.res)+1)
	out = append(out, mem.SliceBuffer(m.head))
	for _, r := range m.res {
		out = append(out, r.delta)
	}
	return out, nil
}

// Resource's fields meshd sets (discovery.proto field numbers).
const (
	resourceVersion = 1
	resourceName    = 3
)

// marshalExcept encodes every field of m but the one numbered skip (and
// its unknown fields) through a shallow copy (protoutil.Without).
func marshalExcept(m proto.Message, skip protowire.Number) ([]byte, error) {
	return proto.Marshal(protoutil.Without(m, skip))
}

// anySize is the encoded size of a plain Any.
func anySize(a *anypb.Any) int {
	n := 0
	if a.TypeUrl != "" {
		n += protowire.SizeTag(anyTypeURL) + protowire.SizeBytes(len(a.TypeUrl))
	}
	if len(a.Value) > 0 {
		n += protowire.SizeTag(anyValue) + protowire.SizeBytes(len(a.Value))
	}
	return n
}

// inlineSize is the room the pieces of as take in the response's own
// buffer (each one's tag of tagSize bytes, length and fields, without the
// values referenced in place), and how many values are referenced.
func inlineSize(as []*anypb.Any, tagSize int) (n, refs int) {
	for _, a := range as {
		size := anySize(a)
		n += tagSize + protowire.SizeVarint(uint64(size)) + size
		if len(a.Value) > inlineMax {
			n -= len(a.Value)
			refs++
		}
	}
	return n, refs
}

// newSliceWriter starts a response with its encoded head, room for extra
// more bytes of small pieces in the same array and for refs referenced
// values.
func newSliceWriter(head []byte, extra, refs int) *sliceWriter {
	buf := make([]byte, len(head), len(head)+extra)
	copy(buf, head)
	return &sliceWriter{buf: buf, out: make(mem.BufferSlice, 0, 2*refs+1)}
}

// sliceWriter builds a BufferSlice: small pieces are appended to buf, a
// large value is referenced in place between them.
type sliceWriter struct {
	out mem.BufferSlice
	buf []byte
}

// any writes a's fields (not its own tag and length).
func (w *sliceWriter) any(a *anypb.Any) {
	if a.TypeUrl != "" {
		w.buf = protowire.AppendTag(w.buf, anyTypeURL, protowire.BytesType)
		w.buf = protowire.AppendString(w.buf, a.TypeUrl)
	}
	if len(a.Value) == 0 {
		return
	}
	w.buf = protowire.AppendTag(w.buf, anyValue, protowire.BytesType)
	w.buf = protowire.AppendVarint(w.buf, uint64(len(a.Value)))
	if len(a.Value) <= inlineMax {
		w.buf = append(w.buf, a.Value...)
		return
	}
	w.flush()
	w.out = append(w.out, mem.SliceBuffer(a.Value))
}

// flush ends the current small-piece buffer.
func (w *sliceWriter) flush() {
	if len(w.buf) > 0 {
		w.out = append(w.out, mem.SliceBuffer(w.buf))
		w.buf = w.buf[len(w.buf):] // the next pieces go after it, in the same array while it has room
	}
}

func (w *sliceWriter) done() mem.BufferSlice {
	w.flush()
	return w.out
}

// internAll replaces each name by its canonical copy.
func internAll(ss []string) {
	for i, s := range ss {
		ss[i] = reqNames.intern(s)
	}
}
