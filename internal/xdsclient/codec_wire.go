package xdsclient

import (
	"errors"
	"fmt"
	"unicode/utf8"
	"unsafe"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// wireField is one field of an encoded message, as nextField reads it.
type wireField struct {
	num protowire.Number
	typ protowire.Type
	val []byte // a length-delimited field's contents (capacity capped)
	x   uint64 // a varint field's value
}

// nextField reads the first field of b and returns it and its length on
// the wire, tag included. Malformed wire data (a bad tag or field number,
// a truncated value, a stray end group) is an error.
func nextField(b []byte) (wireField, int, error) {
	var tag uint64
	n := 1
	if len(b) > 0 && b[0] < 0x80 { // one-byte tag: fields 1 to 15
		tag = uint64(b[0])
	} else if tag, n = protowire.ConsumeVarint(b); n < 0 {
		return wireField{}, 0, protowire.ParseError(n)
	}
	if num := tag >> 3; num < uint64(protowire.MinValidNumber) || num > uint64(protowire.MaxValidNumber) {
		return wireField{}, 0, fmt.Errorf("field number %d out of range", num)
	}
	f := wireField{num: protowire.Number(tag >> 3), typ: protowire.Type(tag & 7)}
	var m int
	switch f.typ {
	case protowire.BytesType:
		f.val, m = protowire.ConsumeBytes(b[n:])
		f.val = f.val[:len(f.val):len(f.val)]
	case protowire.VarintType:
		f.x, m = protowire.ConsumeVarint(b[n:])
	default:
		m = protowire.ConsumeFieldValue(f.num, f.typ, b[n:])
	}
	if m < 0 {
		return wireField{}, 0, fmt.Errorf("field %d: %w", f.num, protowire.ParseError(m))
	}
	return f, n + m, nil
}

// eachField calls set with each field of the encoded message b in order,
// appends the fields set does not know to m's unknown fields (drops them
// if m is nil), and stops at the first error.
func eachField(b []byte, m proto.Message, set func(wireField) (known bool, err error)) error {
	var unknown []byte
	for len(b) > 0 {
		f, n, err := nextField(b)
		if err != nil {
			return err
		}
		raw := b[:n] // the whole field, tag included
		b = b[n:]
		known, err := set(f)
		if err != nil {
			return fmt.Errorf("field %d: %w", f.num, err)
		}
		if !known && m != nil {
			unknown = append(unknown, raw...)
		}
	}
	if len(unknown) > 0 {
		r := m.ProtoReflect()
		r.SetUnknown(append(r.GetUnknown(), unknown...))
	}
	return nil
}

// countField counts the fields numbered num at the top level of b (up to
// the first malformed byte), to size slices before decoding.
func countField(b []byte, num protowire.Number) int {
	count := 0
	for len(b) > 0 {
		f, n, err := nextField(b)
		if err != nil {
			break
		}
		if f.num == num {
			count++
		}
		b = b[n:]
	}
	return count
}

func (f wireField) wrongType(want protowire.Type) error {
	return fmt.Errorf("wire type %d, want %d", f.typ, want)
}

// bytes returns a length-delimited field's contents; they alias the
// decoded buffer.
func (f wireField) bytes() ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, f.wrongType(protowire.BytesType)
	}
	return f.val, nil
}

var errUTF8 = errors.New("string is not valid UTF-8")

// str returns a string field, copied.
func (f wireField) str() (string, error) {
	b, err := f.utf8()
	return string(b), err
}

// aliased returns a string field that aliases the decoded buffer: no
// copy, but whoever keeps the string keeps the whole buffer, so it is for
// strings dropped with the response (or interned by their reader).
func (f wireField) aliased() (string, error) {
	b, err := f.utf8()
	if err != nil || len(b) == 0 {
		return "", err
	}
	return unsafe.String(unsafe.SliceData(b), len(b)), nil
}

// interned returns a string field, interned: strings that thousands of
// clients receive alike (type URLs, versions, names) are kept once.
func (f wireField) interned() (string, error) {
	b, err := f.utf8()
	if err != nil || len(b) == 0 {
		return "", err
	}
	// The temporary string aliases b only for the lookup: unique.Make
	// clones a string it stores, and b is not written to meanwhile.
	return intern(unsafe.String(unsafe.SliceData(b), len(b))), nil
}

func (f wireField) utf8() ([]byte, error) {
	b, err := f.bytes()
	if err != nil {
		return nil, err
	}
	if !utf8.Valid(b) {
		return nil, errUTF8
	}
	return b, nil
}

// bool returns a bool (varint) field.
func (f wireField) bool() (bool, error) {
	if f.typ != protowire.VarintType {
		return false, f.wrongType(protowire.VarintType)
	}
	return f.x != 0, nil
}

var mergeOptions = proto.UnmarshalOptions{Merge: true}

// message decodes a singular message field into *p (allocated if nil),
// merging as protobuf does when the field is repeated on the wire. It is
// for the fields rarely set, decoded by proto.Unmarshal.
func message[M any, P interface {
	*M
	proto.Message
}](f wireField, p *P) error {
	b, err := f.bytes()
	if err != nil {
		return err
	}
	if *p == nil {
		*p = new(M)
	}
	return mergeOptions.Unmarshal(b, *p)
}

// appendMessage decodes one element of a repeated message field with
// proto.Unmarshal and appends it to *s.
func appendMessage[M any, P interface {
	*M
	proto.Message
}](f wireField, s *[]P) error {
	b, err := f.bytes()
	if err != nil {
		return err
	}
	m := P(new(M))
	if err := proto.Unmarshal(b, m); err != nil {
		return err
	}
	*s = append(*s, m)
	return nil
}

// slab hands out pointers into one allocation, then new values once it
// runs out: the resources of a response are allocated together.
type slab[T any] struct{ s []T }

func (a *slab[T]) next() *T {
	if len(a.s) == 0 {
		return new(T)
	}
	p := &a.s[0]
	a.s = a.s[1:]
	return p
}
