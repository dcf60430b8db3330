package convert

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/internal/model"
)

// fieldError is a problem found at one field of an object, before the object's
// identity is attached.
type fieldError struct {
	field string
	msg   string
}

func errf(field, format string, args ...any) *fieldError {
	return &fieldError{field: field, msg: fmt.Sprintf(format, args...)}
}

// objectError attaches the object's identity to fe. It returns a nil error
// interface (not a typed nil) when fe is nil.
func objectError(kind model.Kind, meta *metav1.ObjectMeta, fe *fieldError) error {
	if fe == nil {
		return nil
	}
	return &model.ObjectError{
		Kind: kind, Namespace: meta.Namespace, Name: meta.Name,
		Field: fe.field, Message: fe.msg,
	}
}

// checkMeta requires a name and, for namespaced kinds, a namespace.
func checkMeta(meta *metav1.ObjectMeta, namespaced bool) *fieldError {
	if meta.Name == "" {
		return errf("metadata.name", "name is required")
	}
	if namespaced && meta.Namespace == "" {
		return errf("metadata.namespace", "namespace is required")
	}
	return nil
}

// nilObject reports a nil argument; it has no identity to name.
func nilObject(kind model.Kind) error {
	return &model.ObjectError{Kind: kind, Message: "nil object"}
}

// at formats a list element path: at("spec.http", 2) is "spec.http[2]".
func at(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// key formats a map entry path: key("spec.labels", "app") is "spec.labels[app]".
func key(path, k string) string { return path + "[" + k + "]" }
