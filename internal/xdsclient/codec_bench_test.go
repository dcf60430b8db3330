package xdsclient

import (
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// benchAny is an Any of type typeURL whose value is n bytes.
func benchAny(typeURL string, n int) *anypb.Any {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(i)
	}
	return &anypb.Any{TypeUrl: typeURL, Value: v}
}

// BenchmarkCodec compares gRPC's proto codec (alone, and with the
// proto.Size the transport used to add) with the client's codec on a
// response carrying one 336 KB route configuration and on ones carrying
// 1,000 500-byte ClusterLoadAssignments. The message arrives in one
// buffer, as gRPC hands over an uncompressed message.
func BenchmarkCodec(b *testing.B) {
	big := &discovery.DiscoveryResponse{VersionInfo: "v1", TypeUrl: resourcev3.RouteType, Nonce: "1",
		Resources: []*anypb.Any{benchAny(resourcev3.RouteType, 336<<10)}}
	many := &discovery.DiscoveryResponse{VersionInfo: "v1", TypeUrl: resourcev3.EndpointType, Nonce: "1"}
	manyDelta := &discovery.DeltaDiscoveryResponse{SystemVersionInfo: "v1", TypeUrl: resourcev3.EndpointType, Nonce: "1"}
	for range 1000 {
		a := benchAny(resourcev3.EndpointType, 500)
		many.Resources = append(many.Resources, a)
		manyDelta.Resources = append(manyDelta.Resources, &discovery.Resource{Name: "outbound|8080||a.ns.svc.cluster.local",
			Version: "0123456789abcdef", Resource: a})
	}
	cases := []struct {
		name  string
		msg   proto.Message
		fresh func() proto.Message
	}{
		{"sotw-1x336KB", big, func() proto.Message { return &discovery.DiscoveryResponse{} }},
		{"sotw-1000x500B", many, func() proto.Message { return &discovery.DiscoveryResponse{} }},
		{"delta-1000x500B", manyDelta, func() proto.Message { return &discovery.DeltaDiscoveryResponse{} }},
	}
	def := encoding.GetCodecV2("proto")
	for _, tc := range cases {
		raw, err := proto.Marshal(tc.msg)
		if err != nil {
			b.Fatal(err)
		}
		data := mem.BufferSlice{mem.SliceBuffer(raw)}
		b.Run(tc.name+"/default", func(b *testing.B) {
			benchUnmarshal(b, len(raw), func() error { return def.Unmarshal(data, tc.fresh()) })
		})
		b.Run(tc.name+"/default+size", func(b *testing.B) {
			benchUnmarshal(b, len(raw), func() error {
				m := tc.fresh()
				err := def.Unmarshal(data, m)
				_ = proto.Size(m)
				return err
			})
		})
		b.Run(tc.name+"/xdsclient", func(b *testing.B) {
			c := testCodec()
			benchUnmarshal(b, len(raw), func() error { return c.Unmarshal(data, &received{msg: tc.fresh()}) })
		})
	}
}

func benchUnmarshal(b *testing.B, size int, unmarshal func() error) {
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		if err := unmarshal(); err != nil {
			b.Fatal(err)
		}
	}
}
