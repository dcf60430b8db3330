// Package protoutil holds protobuf helpers shared by translate and xds.
package protoutil

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Without returns a shallow copy of m without the field numbered skip:
// the other fields' values are shared, not cloned, and unknown fields and
// fields added to the message in later versions are carried along.
func Without(m proto.Message, skip protowire.Number) proto.Message {
	src := m.ProtoReflect()
	dst := src.New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Number() != skip {
			dst.Set(fd, v)
		}
		return true
	})
	dst.SetUnknown(src.GetUnknown())
	return dst.Interface()
}
