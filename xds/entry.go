package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"unicode/utf8"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// newMarshalled returns the marshalled form of resource name of typeURL
// encoded as value (encodeEntry, with a copy of value).
func newMarshalled(typeURL, name string, value []byte) marshalled {
	m, _ := encodeEntry(typeURL, name, len(value), func(b []byte) ([]byte, error) { return append(b, value...), nil })
	return m
}

// encodeEntry returns the marshalled form of resource name of typeURL
// whose encoding, size bytes, fill appends to its argument. Besides the
// Any, it holds the resource encoded for each protocol in one array,
// the Any's Value being its tail:
//
//   - entry: one DiscoveryResponse.resources field (tag, length, the Any's
//     fields). A state-of-the-world response is its head and these
//     entries, referenced, not copied or re-encoded per stream
//     (encodedResponse). A connect storm sends every resource to every
//     proxy: encoding each Any's framing per response was a fifth of
//     meshd's CPU in it.
//   - delta: one DeltaDiscoveryResponse.resources field, the Resource's
//     version (the hash) and name, then its resource field — which has
//     the field number and form of entry, so entry is delta's tail. A
//     delta response is its head and these (deltaOut): building and
//     encoding a Resource per resource per stream was half of meshd's CPU
//     in a delta connect storm.
func encodeEntry(typeURL, name string, size int, fill func([]byte) ([]byte, error)) (marshalled, error) {
	anyLen := protowire.SizeTag(anyTypeURL) + protowire.SizeBytes(len(typeURL))
	if size > 0 {
		anyLen += protowire.SizeTag(anyValue) + protowire.SizeBytes(size)
	}
	entryLen := protowire.SizeTag(sotwResources) + protowire.SizeBytes(anyLen)
	head := protowire.SizeTag(resourceVersion) + protowire.SizeBytes(hashLen)
	if name != "" {
		head += protowire.SizeTag(resourceName) + protowire.SizeBytes(len(name))
	}
	b := make([]byte, 0, protowire.SizeTag(deltaResources)+protowire.SizeBytes(head+entryLen))
	b = protowire.AppendTag(b, deltaResources, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(head+entryLen))
	b = protowire.AppendTag(b, resourceVersion, protowire.BytesType)
	b = protowire.AppendVarint(b, hashLen)
	at := len(b) // the hash goes here once the value is encoded
	b = append(b, make([]byte, hashLen)...)
	if name != "" {
		b = protowire.AppendTag(b, resourceName, protowire.BytesType)
		b = protowire.AppendString(b, name)
	}
	start := len(b)
	b = protowire.AppendTag(b, sotwResources, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(anyLen))
	b = protowire.AppendTag(b, anyTypeURL, protowire.BytesType)
	b = protowire.AppendString(b, typeURL)
	if size > 0 {
		b = protowire.AppendTag(b, anyValue, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
	}
	off := len(b)
	b, err := fill(b)
	if err != nil {
		return nil, err
	}
	if len(b)-off != size {
		return nil, fmt.Errorf("encoding %s: %d bytes, %d expected", typeURL, len(b)-off, size)
	}
	value := b[off:len(b):len(b)]
	sum := sha256.Sum256(value)
	hex.Encode(b[at:at+hashLen], sum[:])
	return &wire{
		any:   &anypb.Any{TypeUrl: typeURL, Value: value},
		hash:  string(b[at : at+hashLen]),
		entry: mem.SliceBuffer(b[start:]),
		delta: mem.SliceBuffer(b),
	}, nil
}

// hashLen is the length of a marshalled resource's hash: hex SHA-256.
const hashLen = 2 * sha256.Size

// A delta Resource's resource field and a DiscoveryResponse's resources
// field have the same number (and form), so that entry is the tail of
// delta: this does not compile if they differ.
const _ = uint(sotwResources-resourceAny) | uint(resourceAny-sotwResources)

// encodedResponse is what a state-of-the-world stream sends for a
// response over marshalled resources: the DiscoveryResponse (for its
// other fields) and its resources' entries, in order. meshd's codec
// encodes it as the DiscoveryResponse by reference to the entries; any
// other codec sees the embedded DiscoveryResponse (a proto.Message) and
// encodes that, so a server registered without Codec still works.
type encodedResponse struct {
	*discovery.DiscoveryResponse
	entries []mem.Buffer
}

// size is the response's encoded size: its other fields' and its
// entries' (no walk over the resources, as proto.Size would make).
func (m *encodedResponse) size() int {
	n := 0
	for _, e := range m.entries {
		n += e.Len()
	}
	resources := m.Resources
	m.Resources = nil // the response is this stream's own: measured without them, then restored
	n += proto.Size(m.DiscoveryResponse)
	m.Resources = resources
	return n
}

// marshalEncoded writes the response's fields but resources, then the
// entries by reference.
func marshalEncoded(m *encodedResponse) (mem.BufferSlice, error) {
	head, ok := plainHead(m.DiscoveryResponse)
	if !ok {
		var err error
		if head, err = marshalExcept(m.DiscoveryResponse, sotwResources); err != nil {
			return nil, err
		}
	}
	out := make(mem.BufferSlice, 0, len(m.entries)+1)
	out = append(out, mem.SliceBuffer(head))
	return append(out, m.entries...), nil
}

// DiscoveryResponse's fields plainHead writes.
const (
	responseVersion = 1
	responseTypeURL = 4
	responseNonce   = 5
)

// plainHeads: DiscoveryResponse has the seven fields plainHead knows of
// (a version with more is encoded by protobuf).
var plainHeads = (&discovery.DiscoveryResponse{}).ProtoReflect().Descriptor().Fields().Len() == 7

// plainHead encodes the response's fields but its resources as protobuf
// would, when they are just the version, type URL and nonce a stream sets
// (ok false otherwise): the per-stream head of every response, without
// protobuf's reflection.
func plainHead(m *discovery.DiscoveryResponse) (head []byte, ok bool) {
	if !plainHeads || m.Canary || m.ControlPlane != nil || len(m.ResourceErrors) > 0 || len(m.ProtoReflect().GetUnknown()) > 0 ||
		!utf8.ValidString(m.VersionInfo) || !utf8.ValidString(m.TypeUrl) || !utf8.ValidString(m.Nonce) {
		return nil, false
	}
	fields := [...]struct {
		num protowire.Number
		v   string
	}{{responseVersion, m.VersionInfo}, {responseTypeURL, m.TypeUrl}, {responseNonce, m.Nonce}}
	n := 0
	for _, f := range fields {
		if f.v != "" {
			n += protowire.SizeTag(f.num) + protowire.SizeBytes(len(f.v))
		}
	}
	head = make([]byte, 0, n)
	for _, f := range fields {
		if f.v != "" {
			head = protowire.AppendString(protowire.AppendTag(head, f.num, protowire.BytesType), f.v)
		}
	}
	return head, true
}

// entriesOf lists the entries of ms.
func entriesOf(ms []marshalled) []mem.Buffer {
	out := make([]mem.Buffer, len(ms))
	for i, m := range ms {
		out[i] = m.entry
	}
	return out
}
