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
//   - Responses (DiscoveryResponse, DeltaDiscoveryResponse) are encoded
//     without copying their resources: the encoding is a list of buffers
//     in which each resource's bytes are the Any's own Value, shared by
//     every stream it is sent to. grpc-go's codec marshals each response
//     into a fresh buffer (a 336 KB route configuration sent to 2,000
//     proxies is 670 MB of copies, held until each transport has written
//     it); meshd's resources are immutable once published, so the streams
//     can share them.
//   - Requests (DiscoveryRequest, DeltaDiscoveryRequest) get their resource
//     names interned: a state-of-the-world EDS request names every cluster
//     the proxy watches, thousands of proxies name the same ones, and
//     go-control-plane keeps each stream's last names.
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
	case *discovery.DeltaDiscoveryResponse:
		if deltaPlain(m.GetResources()) {
			return marshalDelta(m)
		}
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
		if err := defaultCodec().Unmarshal(data, v); err != nil {
			return err
		}
		internAll(m.ResourceNamesSubscribe)
		internAll(m.ResourceNamesUnsubscribe)
		return nil
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
	if len(data) == 1 {
		return unmarshalHinted(data[0].ReadOnlyData(), m, hint)
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
	return unmarshalHinted(b, m, hint)
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

func deltaPlain(rs []*discovery.Resource) bool {
	for _, r := range rs {
		if r == nil || (r.GetResource() != nil && !anysPlain([]*anypb.Any{r.GetResource()})) {
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

// marshalDelta is marshalSotW for delta responses: each Resource is its
// fields but the Any, by proto.Marshal, then the Any.
func marshalDelta(m *discovery.DeltaDiscoveryResponse) (mem.BufferSlice, error) {
	b, err := marshalExcept(m, deltaResources)
	if err != nil {
		return nil, err
	}
	// Resources with fields other than a name, a version and the Any (none
	// that meshd builds) are encoded by proto.Marshal; the others are
	// written straight into the response's buffer.
	var others map[int][]byte
	extra, refs := 0, 0
	for i, r := range m.Resources {
		head := plainHeadSize(r)
		if head < 0 {
			rest, err := marshalExcept(r, resourceAny)
			if err != nil {
				return nil, err
			}
			if others == nil {
				others = map[int][]byte{}
			}
			others[i], head = rest, len(rest)
		}
		size := head
		if a := r.GetResource(); a != nil {
			n := anySize(a)
			size += protowire.SizeTag(resourceAny) + protowire.SizeVarint(uint64(n)) + n
			if len(a.Value) > inlineMax {
				size -= len(a.Value) // referenced in place, not copied
				refs++
			}
		}
		extra += protowire.SizeTag(deltaResources) + protowire.SizeVarint(uint64(size)) + size
	}
	// One allocation for the small pieces (each response carries a
	// thousand resources at a connect storm: growing the buffer as it
	// went, and a proto.Marshal per Resource, were half of meshd's CPU).
	w := newSliceWriter(b, extra, refs)
	for i, r := range m.Resources {
		rest, other := others[i]
		size := len(rest)
		if !other {
			size = plainHeadSize(r)
		}
		if a := r.GetResource(); a != nil {
			n := anySize(a)
			size += protowire.SizeTag(resourceAny) + protowire.SizeBytes(n)
		}
		w.buf = protowire.AppendTag(w.buf, deltaResources, protowire.BytesType)
		w.buf = protowire.AppendVarint(w.buf, uint64(size))
		if other {
			w.buf = append(w.buf, rest...)
		} else {
			w.buf = appendPlainHead(w.buf, r)
		}
		if a := r.GetResource(); a != nil {
			w.buf = protowire.AppendTag(w.buf, resourceAny, protowire.BytesType)
			w.buf = protowire.AppendVarint(w.buf, uint64(anySize(a)))
			w.any(a)
		}
	}
	return w.done(), nil
}

// Resource's fields meshd sets (discovery.proto field numbers).
const (
	resourceVersion = 1
	resourceName    = 3
)

// plainHeadSize is the encoded size of a Resource's name and version, or
// -1 when it has other fields besides its Any (then proto.Marshal encodes
// them). Resources meshd builds carry a name and a version only.
func plainHeadSize(r *discovery.Resource) int {
	if len(r.Aliases) > 0 || r.Ttl != nil || r.CacheControl != nil || r.Metadata != nil || r.ResourceName != nil ||
		len(r.ProtoReflect().GetUnknown()) > 0 {
		return -1
	}
	n := 0
	if r.Version != "" {
		n += protowire.SizeTag(resourceVersion) + protowire.SizeBytes(len(r.Version))
	}
	if r.Name != "" {
		n += protowire.SizeTag(resourceName) + protowire.SizeBytes(len(r.Name))
	}
	return n
}

// appendPlainHead appends a plain Resource's version and name (see
// plainHeadSize).
func appendPlainHead(b []byte, r *discovery.Resource) []byte {
	if r.Version != "" {
		b = protowire.AppendTag(b, resourceVersion, protowire.BytesType)
		b = protowire.AppendString(b, r.Version)
	}
	if r.Name != "" {
		b = protowire.AppendTag(b, resourceName, protowire.BytesType)
		b = protowire.AppendString(b, r.Name)
	}
	return b
}

// resourceHead encodes a Resource's fields but its Any (the plain fields
// by hand, others through proto.Marshal).
func resourceHead(r *discovery.Resource) ([]byte, error) {
	if plainHeadSize(r) < 0 {
		return marshalExcept(r, resourceAny)
	}
	return appendPlainHead(nil, r), nil
}

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
