package xdsclient

import (
	"bytes"
	"fmt"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/meshd/meshd/internal/bufpool"
)

// codec is the gRPC codec of the client's ADS streams. It decodes
// DiscoveryResponse and DeltaDiscoveryResponse messages itself (see
// unmarshalResponse and unmarshalDeltaResponse; the delta transport reads
// the latter into a lighter deltaMessage): the received bytes are
// copied once into a buffer the message owns, and every Any (value and
// type URL) and the strings of delta resources alias that buffer instead
// of being copied again. Such a string kept beyond the response would keep
// the whole buffer: the client interns what it keeps. Everything else (the
// requests the client sends, any other message) goes to gRPC's proto codec.
//
// Its name is "proto", so the server sees the usual content-subtype and
// decodes with its own proto codec.
type codec struct {
	fallback encoding.CodecV2
}

// callCodec is the call option that puts codec on a stream.
var callCodec = grpc.ForceCodecV2(codec{fallback: encoding.GetCodecV2(protocodec.Name)})

// received is what a stream receives into: the response (a
// *DiscoveryResponse, *DeltaDiscoveryResponse or *deltaMessage) and its encoded size,
// which the codec sets to the length of the received message.
type received struct {
	msg  any
	size int
	// buf is the pooled buffer msg aliases (nil if not pooled): the
	// receiver returns it to responseBufs once nothing refers to msg.
	buf *[]byte
}

// Name is the content-subtype the codec speaks.
func (codec) Name() string { return protocodec.Name }

// preEncoded is a message the client encoded itself; the codec sends its
// buffers as they are.
type preEncoded mem.BufferSlice

// Marshal encodes v with gRPC's proto codec, or sends a preEncoded as is.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if p, ok := v.(preEncoded); ok {
		return mem.BufferSlice(p), nil
	}
	return c.fallback.Marshal(v)
}

// Unmarshal decodes data into v: a *received (which also records the
// size), a response decoded by the client itself, or any other message,
// which gRPC's proto codec decodes.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	var b []byte
	if r, ok := v.(*received); ok {
		r.size = data.Len()
		v = r.msg
		if r.buf = responseBufs.Get(r.size); r.buf != nil {
			b = (*r.buf)[:r.size]
			data.CopyTo(b)
		}
	}
	if b == nil {
		b = owned(data)
	}
	switch m := v.(type) {
	case *discovery.DiscoveryResponse:
		if err := unmarshalResponse(b, m); err != nil {
			return fmt.Errorf("xdsclient: decoding DiscoveryResponse: %w", err)
		}
		return nil
	case *discovery.DeltaDiscoveryResponse:
		if err := unmarshalDeltaResponse(b, m); err != nil {
			return fmt.Errorf("xdsclient: decoding DeltaDiscoveryResponse: %w", err)
		}
		return nil
	case *deltaMessage:
		if err := unmarshalDeltaMessage(b, m); err != nil {
			return fmt.Errorf("xdsclient: decoding DeltaDiscoveryResponse: %w", err)
		}
		return nil
	}
	return c.fallback.Unmarshal(data, v)
}

// Received messages of at least minPooled bytes are decoded from pooled
// buffers: a fresh buffer of a route configuration's size (336 KB at 1,000
// services, for each of thousands of simulated proxies) costs its zeroing
// as much as its copy.
const (
	minPooled = 64 << 10
	maxPooled = 16 << 20
)

// responseBufs holds the buffers large responses are decoded from.
var responseBufs = bufpool.New(minPooled, maxPooled)

// owned copies data into a freshly allocated buffer (not a pooled one: the
// decoded message aliases it, and gRPC frees data after Unmarshal).
func owned(data mem.BufferSlice) []byte {
	if len(data) == 1 { // the usual case; unlike Materialize, no zeroing first
		return bytes.Clone(data[0].ReadOnlyData())
	}
	return data.Materialize()
}
