package xds

import (
	"bytes"
	"strconv"
	"testing"
	"unsafe"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/stretchr/testify/require"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// deltaRequests are delta requests of every shape a client sends: a
// first request with the node and a long subscription, a reconnect
// presenting versions, an ACK, a NACK, subscription changes.
func deltaRequests() []*discovery.DeltaDiscoveryRequest {
	var names []string
	versions := map[string]string{}
	for i := range 40 {
		n := "outbound|8080||svc-" + strconv.Itoa(i) + ".ns.svc.cluster.local"
		names = append(names, n)
		versions[n] = strconv.Itoa(i % 3)
	}
	versions[""] = ""
	return []*discovery.DeltaDiscoveryRequest{
		{},
		{TypeUrl: "t", ResourceNamesSubscribe: []string{""}},
		{Node: &core.Node{Id: "sidecar~10.0.0.1~p.ns~ns.svc.cluster.local"}, TypeUrl: "eds", ResourceNamesSubscribe: names},
		{TypeUrl: "cds", InitialResourceVersions: versions, ResourceNamesSubscribe: []string{"*"}},
		{TypeUrl: "eds", ResponseNonce: "7"},
		{TypeUrl: "eds", ResponseNonce: "8", ErrorDetail: &rpcstatus.Status{Code: 3, Message: "rejected"}},
		{TypeUrl: "eds", ResourceNamesSubscribe: names[:3], ResourceNamesUnsubscribe: names[3:5],
			ResourceLocatorsSubscribe: []*discovery.ResourceLocator{{Name: "x"}}},
	}
}

// TestCodecDeltaRequestEqualsProto: meshd's decoding of a delta request
// is protobuf's, from one buffer or several, and interns names and
// versions: two streams share them, and a long subscription list.
func TestCodecDeltaRequestEqualsProto(t *testing.T) {
	for i, req := range deltaRequests() {
		b, err := proto.Marshal(req)
		require.NoError(t, err)
		var got [2]*discovery.DeltaDiscoveryRequest
		for k := range got {
			got[k] = &discovery.DeltaDiscoveryRequest{TypeUrl: "stale", ResponseNonce: "stale"}
			require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(bytes.Clone(b))}, got[k]))
			require.True(t, proto.Equal(req, got[k]), "request %d decoded %v", i, got[k])
		}
		if n := len(req.ResourceNamesSubscribe); n >= minSharedList {
			require.Same(t, &got[0].ResourceNamesSubscribe[0], &got[1].ResourceNamesSubscribe[0], "the list is shared")
		}
		for k, v := range got[0].InitialResourceVersions {
			for k2, v2 := range got[1].InitialResourceVersions {
				if k == k2 && k != "" {
					require.True(t, unsafe.StringData(k) == unsafe.StringData(k2), "names interned")
					require.True(t, unsafe.StringData(v) == unsafe.StringData(v2), "versions interned")
				}
			}
		}
		third := len(b) / 3
		split := mem.BufferSlice{mem.SliceBuffer(b[:third]), mem.SliceBuffer(b[third : 2*third]), mem.SliceBuffer(b[2*third:])}
		frames := &discovery.DeltaDiscoveryRequest{}
		require.NoError(t, codec{}.Unmarshal(split, frames))
		require.True(t, proto.Equal(req, frames), "request %d decoded from frames %v", i, frames)
	}
}

// TestCodecDeltaRequestOddMaps: map entries as protobuf allows them — a
// key or value missing, a key repeated (the last wins), an entry with an
// unknown field (decoded by protobuf) — and malformed requests refused as
// protobuf refuses them.
func TestCodecDeltaRequestOddMaps(t *testing.T) {
	entry := func(fields ...byte) []byte { return append([]byte{0x2a, byte(len(fields))}, fields...) }
	for name, b := range map[string][]byte{
		"no value":       entry(0x0a, 0x01, 'a'),
		"no key":         entry(0x12, 0x01, 'v'),
		"repeated key":   append(entry(0x0a, 0x01, 'a', 0x12, 0x01, '1'), entry(0x0a, 0x01, 'a', 0x12, 0x01, '2')...),
		"value then key": entry(0x12, 0x01, 'v', 0x0a, 0x01, 'k'),
		"unknown field":  entry(0x0a, 0x01, 'a', 0x18, 0x01, 0x12, 0x01, 'v'),
	} {
		want := &discovery.DeltaDiscoveryRequest{}
		require.NoError(t, proto.Unmarshal(b, want), name)
		got := &discovery.DeltaDiscoveryRequest{}
		require.NoError(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, got), name)
		require.True(t, proto.Equal(want, got), "%s: decoded %v, protobuf %v", name, got, want)
	}
	for name, b := range map[string][]byte{
		"truncated name":        {0x1a, 0x05, 'a'},
		"truncated tag":         {0x80},
		"invalid UTF-8 name":    {0x1a, 0x02, 0xff, 0xfe},
		"invalid UTF-8 version": entry(0x0a, 0x01, 'a', 0x12, 0x01, 0xff),
		"truncated entry":       {0x2a, 0x04, 0x0a, 0x01},
	} {
		require.Error(t, proto.Unmarshal(b, &discovery.DeltaDiscoveryRequest{}), "protobuf refuses %s", name)
		require.Error(t, codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &discovery.DeltaDiscoveryRequest{}), name)
	}
}

// FuzzDeltaRequestDecode: whatever the bytes, meshd's decoding of a delta
// request agrees with protobuf's (both fail, or both give the same
// message) and keeps nothing of the input.
func FuzzDeltaRequestDecode(f *testing.F) {
	for _, req := range deltaRequests() {
		b, err := proto.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{0x2a, 0x06, 0x0a, 0x01, 'a', 0x18, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		want := &discovery.DeltaDiscoveryRequest{}
		werr := proto.Unmarshal(b, want)
		in := bytes.Clone(b)
		got := &discovery.DeltaDiscoveryRequest{TypeUrl: "stale"}
		gerr := codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(in)}, got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%x: protobuf: %v, meshd: %v", b, werr, gerr)
		}
		if werr != nil {
			return
		}
		clear(in)
		if !proto.Equal(want, got) {
			t.Fatalf("%x: protobuf %v, meshd %v", b, want, got)
		}
	})
}
