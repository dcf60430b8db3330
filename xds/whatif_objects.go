package xds

import (
	"maps"
	"reflect"
	"slices"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/internal/model"
)

// stampCreation gives the changed objects the creation time the API server
// would: an update keeps the object's (istiod resolves conflicts oldest
// first), a new object gets now, unless the mesh has no creation times
// (the file provider, whose objects all have none). Objects that carry a
// time keep it. changes is not modified.
func stampCreation(base *model.Snapshot, changes []model.Change, now time.Time) []model.Change {
	out := slices.Clone(changes)
	stampNew := hasCreationTimes(base)
	created := func(c model.Change) (time.Time, bool) {
		old, ok := base.Object(c.Kind, c.Namespace, c.Name)
		switch o := old.(type) {
		case *model.Config:
			return o.CreatedAt, true
		case *model.Service:
			return o.CreatedAt, true
		}
		return now, !ok && stampNew
	}
	for i, c := range out {
		switch o := c.Object.(type) {
		case *model.Config:
			if t, ok := created(c); ok && o.CreatedAt.IsZero() {
				cp := *o
				cp.CreatedAt = t
				out[i].Object = &cp
			}
		case *model.Service:
			if t, ok := created(c); ok && o.CreatedAt.IsZero() {
				cp := *o
				cp.CreatedAt = t
				out[i].Object = &cp
			}
		}
	}
	return out
}

// hasCreationTimes reports whether any service or config object of snap
// has a creation time.
func hasCreationTimes(snap *model.Snapshot) bool {
	for _, svc := range snap.Services() {
		if !svc.CreatedAt.IsZero() {
			return true
		}
	}
	for _, k := range model.ConfigKinds {
		for _, c := range snap.Configs(k) {
			if !c.CreatedAt.IsZero() {
				return true
			}
		}
	}
	return false
}

// objectActions says what each change does to base's objects.
func objectActions(base *model.Snapshot, changes []model.Change) []WhatIfObject {
	out := make([]WhatIfObject, 0, len(changes))
	for _, c := range changes {
		o := WhatIfObject{Kind: c.Kind, Namespace: c.Namespace, Name: c.Name}
		old, exists := base.Object(c.Kind, c.Namespace, c.Name)
		switch {
		case c.Err != nil:
			o.Action = "invalid"
		case c.Object == nil && exists:
			o.Action = "delete"
		case c.Object == nil:
			o.Action = "absent"
		case !exists:
			o.Action = "create"
		case sameObject(old, c.Object):
			o.Action = "unchanged"
		default:
			o.Action = "update"
		}
		out = append(out, o)
	}
	return out
}

// sameObject compares two versions of an object by content, leaving out
// where they were read from.
func sameObject(a, b any) bool {
	switch x := a.(type) {
	case *model.Config:
		y, ok := b.(*model.Config)
		return ok && x.Kind == y.Kind && maps.Equal(x.Labels, y.Labels) && maps.Equal(x.Annotations, y.Annotations) &&
			x.CreatedAt.Equal(y.CreatedAt) && proto.Equal(x.Spec, y.Spec)
	case *model.MeshConfig:
		y, ok := b.(*model.MeshConfig)
		return ok && proto.Equal(x.Spec, y.Spec)
	case *model.Secret:
		y, ok := b.(*model.Secret)
		if !ok {
			return false
		}
		xs, ys := *x, *y
		xs.Source, ys.Source = "", ""
		return reflect.DeepEqual(xs, ys)
	}
	return reflect.DeepEqual(a, b)
}

// errorKey identifies a config error whatever document reported it: the
// change's documents have sources of their own.
type errorKey struct {
	kind             model.Kind
	ns, name         string
	field, message   string
	sourceIfNoObject string
}

func keyOf(e model.ObjectError) errorKey {
	k := errorKey{kind: e.Kind, ns: e.Namespace, name: e.Name, field: e.Field, message: e.Message}
	if e.Name == "" {
		k.sourceIfNoObject = e.Source
	}
	return k
}

// newErrors returns the errors of after that before lacks (added) and
// those of before that after lacks (cleared), each once, in after's and
// before's order.
func newErrors(before, after []model.ObjectError) (added, cleared []model.ObjectError) {
	diff := func(a, b []model.ObjectError) []model.ObjectError {
		have := make(map[errorKey]bool, len(b))
		for _, e := range b {
			have[keyOf(e)] = true
		}
		var out []model.ObjectError
		for _, e := range a {
			if k := keyOf(e); !have[k] {
				have[k] = true
				out = append(out, e)
			}
		}
		return out
	}
	return diff(after, before), diff(before, after)
}

// newValidationErrors returns the problems of after (a scope's new
// config's validation) that before (its current config's) lacks.
func newValidationErrors(before, after error) []string {
	if after == nil {
		return nil
	}
	had := map[string]bool{}
	for _, e := range leafErrors(before) {
		had[e] = true
	}
	var out []string
	for _, e := range leafErrors(after) {
		if !had[e] {
			had[e] = true
			out = append(out, e)
		}
	}
	return out
}

// leafErrors flattens joined errors into their messages.
func leafErrors(err error) []string {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []string
		for _, e := range j.Unwrap() {
			out = append(out, leafErrors(e)...)
		}
		return out
	}
	return []string{err.Error()}
}
