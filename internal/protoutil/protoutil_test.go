package protoutil

import (
	"testing"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestWithout: the copy lacks the field, keeps the others (shared, not
// cloned) and the unknown fields; the original is untouched.
func TestWithout(t *testing.T) {
	rc := &route.RouteConfiguration{Name: "80", ValidateClusters: wrapperspb.Bool(false),
		VirtualHosts: []*route.VirtualHost{{Name: "a", Domains: []string{"a"}}}}
	rc.ProtoReflect().SetUnknown([]byte{0xf8, 0x7f, 0x01}) // field 2047, varint 1
	got := Without(rc, 2).(*route.RouteConfiguration)
	require.Empty(t, got.GetVirtualHosts())
	require.Equal(t, "80", got.GetName())
	require.Same(t, rc.GetValidateClusters(), got.GetValidateClusters())
	require.Equal(t, []byte(rc.ProtoReflect().GetUnknown()), []byte(got.ProtoReflect().GetUnknown()))
	require.Len(t, rc.GetVirtualHosts(), 1)
	want := proto.Clone(rc).(*route.RouteConfiguration)
	want.VirtualHosts = nil
	require.True(t, proto.Equal(want, got))
}
