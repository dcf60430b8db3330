package model

import (
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
)

// Snapshot is an immutable view of everything the mesh knows at one moment.
// Build indexes are computed lazily, once, on first use.
type Snapshot struct {
	// Seq increases by one with every published Snapshot.
	Seq uint64

	objects map[Kind]map[string]any // kind → "namespace/name" → object
	errors  map[string]ObjectError  // objectKey → error

	once  sync.Once
	idx   *index
	built atomic.Bool // idx is set
}

func emptySnapshot() *Snapshot {
	return &Snapshot{objects: map[Kind]map[string]any{}, errors: map[string]ObjectError{}}
}

// apply returns a new Snapshot with changes applied (copy on write per kind),
// and the changes that actually changed something.
func (s *Snapshot) apply(changes []Change) (*Snapshot, []Change) {
	next := &Snapshot{Seq: s.Seq + 1, objects: make(map[Kind]map[string]any, len(s.objects))}
	for k, m := range s.objects {
		next.objects[k] = m
	}
	copied := map[Kind]bool{}
	errorsCopied := false
	next.errors = s.errors
	writable := func(k Kind) map[string]any {
		if !copied[k] {
			m := make(map[string]any, len(next.objects[k])+1)
			for key, v := range next.objects[k] {
				m[key] = v
			}
			next.objects[k] = m
			copied[k] = true
		}
		return next.objects[k]
	}
	writableErrors := func() map[string]ObjectError {
		if !errorsCopied {
			m := make(map[string]ObjectError, len(next.errors)+1)
			for key, v := range next.errors {
				m[key] = v
			}
			next.errors = m
			errorsCopied = true
		}
		return next.errors
	}
	var applied []Change
	for _, c := range changes {
		key := c.Namespace + "/" + c.Name
		ekey := c.Key()
		oldErr, hadErr := next.errors[ekey]
		old, hadObj := next.objects[c.Kind][key]
		switch {
		case c.Err != nil:
			if hadErr && oldErr == *c.Err {
				continue
			}
			writableErrors()[ekey] = *c.Err
		case c.Object != nil:
			if hadErr {
				delete(writableErrors(), ekey)
			}
			if hadObj && old == c.Object && !hadErr {
				continue
			}
			writable(c.Kind)[key] = c.Object
		default:
			if !hadObj && !hadErr {
				continue
			}
			if hadObj {
				delete(writable(c.Kind), key)
			}
			if hadErr {
				delete(writableErrors(), ekey)
			}
		}
		applied = append(applied, c)
	}
	if idx := deriveIndex(s, next, applied); idx != nil {
		next.once.Do(func() {
			next.idx = idx
			next.built.Store(true)
		})
	}
	return next, applied
}

// SameObjects reports whether s and o hold the very same objects of every
// kind but those excepted (snapshots share the objects of kinds a change
// did not touch).
func (s *Snapshot) SameObjects(o *Snapshot, except ...Kind) bool {
	same := func(k Kind) bool {
		for _, e := range except {
			if k == e {
				return true
			}
		}
		a, b := s.objects[k], o.objects[k]
		return len(a) == len(b) && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
	}
	for k := range s.objects {
		if !same(k) {
			return false
		}
	}
	for k := range o.objects {
		if !same(k) {
			return false
		}
	}
	return true
}

// Object returns the object of kind k named namespace/name, if present.
func (s *Snapshot) Object(k Kind, namespace, name string) (any, bool) {
	o, ok := s.objects[k][namespace+"/"+name]
	return o, ok
}

// Count returns how many objects of kind k the Snapshot holds.
func (s *Snapshot) Count(k Kind) int { return len(s.objects[k]) }

// Errors returns every recorded per-object error, sorted by kind, namespace,
// name and source.
func (s *Snapshot) Errors() []ObjectError {
	out := make([]ObjectError, 0, len(s.errors))
	for _, e := range s.errors {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Source < b.Source
	})
	return out
}

// Services returns every service (Kubernetes Services and ServiceEntry hosts),
// sorted by hostname then namespace.
func (s *Snapshot) Services() []*Service { return s.index().services }

// ServicesByHost returns the services with the given hostname, oldest first
// (more than one only when ServiceEntries in several namespaces share a host).
func (s *Snapshot) ServicesByHost(host string) []*Service { return s.index().byHost[host] }

// Endpoints returns the endpoints of the service with the given hostname and
// namespace, sorted by address, with workload labels filled in.
func (s *Snapshot) Endpoints(host, namespace string) []Endpoint {
	return s.index().endpoints[host+"/"+namespace]
}

// Configs returns the config objects of kind k ordered as istiod orders them
// for conflict resolution: oldest first, then by namespace and name.
func (s *Snapshot) Configs(k Kind) []*Config { return s.index().configs[k] }

// Namespaces returns the namespaces sorted by name.
func (s *Snapshot) Namespaces() []*Namespace { return s.index().namespaces }

// Workloads returns the workloads (pods) sorted by namespace and name.
func (s *Snapshot) Workloads() []*Workload { return s.index().workloads }
