package xdsclient

import (
	"math/rand/v2"
	"testing"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// TestDeltaMessageAgrees: what the delta transport decodes (deltaMessage)
// is what the codec decodes into a DeltaDiscoveryResponse, field for
// field, and both reject the same bytes with the same error, on valid
// responses, their prefixes and random corruptions.
func TestDeltaMessageAgrees(t *testing.T) {
	var msgs [][]byte
	for _, m := range deltaCases() {
		msgs = append(msgs, mustMarshal(t, m))
	}
	// A resource repeated within one Resource: its Any merges.
	r1, _ := proto.Marshal(&discovery.Resource{Name: "r", Resource: &anypb.Any{TypeUrl: "a", Value: []byte{1}}})
	r2, _ := proto.Marshal(&discovery.Resource{Version: "2", Resource: &anypb.Any{TypeUrl: "b"}})
	msgs = append(msgs, protowire.AppendBytes(protowire.AppendTag(nil, deltaResources, protowire.BytesType), append(r1, r2...)))
	rng := rand.New(rand.NewPCG(3, 4))
	for _, b := range msgs {
		if len(b) > 2000 {
			b = b[:2000]
		}
		for n := range len(b) + 1 {
			agreeDelta(t, b[:n])
		}
		for range 300 {
			c := append([]byte(nil), b...)
			for range 1 + rng.IntN(3) {
				if len(c) > 0 {
					c[rng.IntN(len(c))] = byte(rng.Uint32())
				}
			}
			agreeDelta(t, c)
		}
	}
}

func agreeDelta(t *testing.T, b []byte) {
	t.Helper()
	var want discovery.DeltaDiscoveryResponse
	var got deltaMessage
	wantErr := unmarshalDeltaResponse(b, &want)
	gotErr := unmarshalDeltaMessage(b, &got)
	if wantErr != nil {
		require.EqualError(t, gotErr, wantErr.Error(), "%x", b)
		return
	}
	require.NoError(t, gotErr, "%x", b)
	require.Equal(t, want.GetTypeUrl(), got.typeURL)
	require.Equal(t, want.GetSystemVersionInfo(), got.version)
	require.Equal(t, want.GetNonce(), got.nonce)
	require.Equal(t, want.GetRemovedResources(), got.removed)
	require.Len(t, got.res, len(want.GetResources()))
	for i, r := range want.GetResources() {
		g := got.res[i]
		require.Equal(t, r.GetName(), g.name)
		require.Equal(t, r.GetVersion(), g.version)
		require.Equal(t, r.GetResource() != nil, g.body)
		require.Equal(t, r.GetResource().GetTypeUrl(), g.typeURL)
		require.Equal(t, string(r.GetResource().GetValue()), string(g.value))
	}
}
