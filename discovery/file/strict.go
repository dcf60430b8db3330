package file

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	sigsjson "sigs.k8s.io/json"
)

// decodeError is a decoding problem at one field; the caller attaches the
// object's identity.
type decodeError struct {
	field string
	msg   string
}

func (e *decodeError) Error() string { return e.field + ": " + e.msg }

// strictJSON decodes a Kubernetes object, rejecting unknown and duplicate
// fields with their full path ("spec.ports[0].prot").
func strictJSON(data []byte, v any) error {
	strictErrs, err := sigsjson.UnmarshalStrict(data, v)
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return &decodeError{field: te.Field, msg: fmt.Sprintf("cannot decode %s into a field of type %s", te.Value, te.Type)}
		}
		return &decodeError{msg: err.Error()}
	}
	if len(strictErrs) > 0 {
		e := strictErrs[0]
		var fe sigsjson.FieldError
		if errors.As(e, &fe) {
			msg := e.Error() // `unknown field "spec.x"` or `duplicate field "spec.x"`
			if i := strings.Index(msg, ` "`); i > 0 {
				msg = msg[:i]
			}
			return &decodeError{field: fe.FieldPath(), msg: msg}
		}
		return &decodeError{msg: e.Error()}
	}
	return nil
}

// protoErrPrefix matches protojson's error prefix, which carries a JSON
// position meaningless to someone editing YAML (and sometimes a non-breaking
// space).
var protoErrPrefix = regexp.MustCompile(`^proto:[\s\x{00a0}]*(\(line \d+:\d+\):[\s\x{00a0}]*)?`)

// strictProto decodes the JSON of an Istio spec into m. Unknown fields are
// errors naming their path under prefix ("spec.http[0].rout"). The decoding
// itself is istio.io/api's own (jsonpb, which accepts durations such as "5m"
// as istiod does); it silently drops unknown fields, hence the walk first.
func strictProto(data []byte, m proto.Message, prefix string) error {
	if len(data) == 0 || string(data) == "null" {
		return nil
	}
	var generic any
	if err := json.Unmarshal(data, &generic); err != nil {
		return &decodeError{field: prefix, msg: err.Error()}
	}
	if err := unknownFields(m.ProtoReflect().Descriptor(), generic, prefix); err != nil {
		return err
	}
	var err error
	if u, ok := m.(json.Unmarshaler); ok {
		err = u.UnmarshalJSON(data)
	} else {
		err = protojson.Unmarshal(data, m)
	}
	if err != nil {
		return &decodeError{field: prefix, msg: protoErrPrefix.ReplaceAllString(err.Error(), "")}
	}
	return nil
}

// unknownFields walks a decoded JSON value alongside the message descriptor
// and reports the first key that names no field, or the first value of the
// wrong JSON type, with its path. Field names may be given in their JSON
// (camelCase) or proto (snake_case) form, as jsonpb accepts.
func unknownFields(md protoreflect.MessageDescriptor, v any, path string) error {
	switch md.FullName() {
	case "google.protobuf.Duration":
		if s, ok := v.(string); !ok || !validDuration(s) {
			return &decodeError{field: path, msg: fmt.Sprintf("invalid duration %v (want a string such as \"5s\" or \"1m30s\")", jsonText(v))}
		}
		return nil
	}
	if strings.HasPrefix(string(md.FullName()), "google.protobuf.") {
		return nil // other well-known types have their own JSON forms
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return &decodeError{field: path, msg: fmt.Sprintf("must be a mapping, not %s", jsonText(v))}
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		p := path + "." + k
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			fd = md.Fields().ByTextName(k)
		}
		if fd == nil {
			return &decodeError{field: p, msg: "unknown field"}
		}
		if err := checkValue(fd, obj[k], p); err != nil {
			return err
		}
	}
	return nil
}

// checkValue checks the value of field fd (a list, a map or a single value).
func checkValue(fd protoreflect.FieldDescriptor, v any, p string) error {
	switch {
	case v == nil:
		return nil
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			return &decodeError{field: p, msg: fmt.Sprintf("must be a list, not %s", jsonText(v))}
		}
		for i, e := range list {
			if err := checkSingle(fd, e, fmt.Sprintf("%s[%d]", p, i)); err != nil {
				return err
			}
		}
	case fd.IsMap():
		m, ok := v.(map[string]any)
		if !ok {
			return &decodeError{field: p, msg: fmt.Sprintf("must be a mapping, not %s", jsonText(v))}
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if err := checkSingle(fd.MapValue(), m[k], p+"["+k+"]"); err != nil {
				return err
			}
		}
	default:
		return checkSingle(fd, v, p)
	}
	return nil
}

// checkSingle checks one value of fd's type (a list element or map value).
func checkSingle(fd protoreflect.FieldDescriptor, v any, p string) error {
	if v == nil {
		return nil
	}
	ok := true
	want := ""
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return unknownFields(fd.Message(), v, p)
	case protoreflect.StringKind, protoreflect.BytesKind:
		_, ok = v.(string)
		want = "a string"
	case protoreflect.BoolKind:
		_, ok = v.(bool)
		want = "true or false"
	case protoreflect.EnumKind:
		return checkEnum(fd.Enum(), v, p)
	default:
		ok, want = checkNumber(fd.Kind(), v)
	}
	if !ok {
		return &decodeError{field: p, msg: fmt.Sprintf("must be %s, not %s", want, jsonText(v))}
	}
	return nil
}

// checkNumber checks a numeric value; jsonpb also accepts numbers quoted.
func checkNumber(k protoreflect.Kind, v any) (ok bool, want string) {
	var x float64
	switch n := v.(type) {
	case float64:
		x = n
	case string:
		f, err := strconv.ParseFloat(n, 64)
		if err != nil {
			return false, "a number"
		}
		x = f
	default:
		return false, "a number"
	}
	switch k {
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		return true, ""
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return x >= 0 && x == math.Trunc(x), "a non-negative integer"
	}
	return x == math.Trunc(x), "an integer"
}

func checkEnum(ed protoreflect.EnumDescriptor, v any, p string) error {
	switch x := v.(type) {
	case float64:
		return nil
	case string:
		if ed.Values().ByName(protoreflect.Name(x)) != nil {
			return nil
		}
	}
	names := make([]string, 0, ed.Values().Len())
	for i := 0; i < ed.Values().Len(); i++ {
		names = append(names, string(ed.Values().Get(i).Name()))
	}
	return &decodeError{field: p, msg: fmt.Sprintf("unknown value %s (want one of %s)", jsonText(v), strings.Join(names, ", "))}
}

func validDuration(s string) bool {
	_, err := time.ParseDuration(s)
	return err == nil
}

// jsonText shows a decoded JSON value the way the user wrote it, roughly.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	if len(b) > 40 {
		return string(b[:37]) + "..."
	}
	return string(b)
}
