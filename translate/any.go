package translate

import (
	"net"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// deterministic marshalling keeps Any bytes, and so versions, stable.
var deterministic = proto.MarshalOptions{Deterministic: true}

// mustAny packs m deterministically. It panics only on a programming error
// (a message that cannot be marshalled), never on user input.
func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	if err := anypb.MarshalFrom(a, m, deterministic); err != nil {
		panic("translate: packing " + string(m.ProtoReflect().Descriptor().FullName()) + ": " + err.Error())
	}
	return a
}

func falseValue() *wrapperspb.BoolValue { return wrapperspb.Bool(false) }

func isIPv4(s string) bool {
	ip := net.ParseIP(s)
	return ip != nil && ip.To4() != nil
}
