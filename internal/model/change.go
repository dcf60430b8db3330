package model

import "time"

// Change is one update from a discovery provider.
//
// Object is a *Service, *EndpointSet, *Workload, *Namespace, *Secret or
// *Config matching Kind. A Change with neither Object nor Err deletes the
// object and any error recorded for it. A Change with Err records the error
// and keeps the last good version of the object (if any) in service: a
// broken edit never removes working config.
type Change struct {
	Kind      Kind
	Namespace string
	Name      string
	Object    any
	Err       *ObjectError
	// Seen is when the provider observed the change (zero: when applied).
	Seen time.Time
}

// Key returns the store key of the changed object: "Kind/namespace/name".
func (c Change) Key() string { return objectKey(c.Kind, c.Namespace, c.Name) }

func objectKey(k Kind, ns, name string) string { return string(k) + "/" + ns + "/" + name }

// Event tells subscribers that the Store published a new Snapshot.
type Event struct {
	Snapshot *Snapshot
	// Changes are the changes applied (objects and errors) in this event.
	Changes []Change
	// Seen is the earliest time a provider observed any of the changes.
	Seen time.Time
}

// Kinds returns the set of kinds touched by the event.
func (e Event) Kinds() map[Kind]bool {
	out := make(map[Kind]bool, len(e.Changes))
	for _, c := range e.Changes {
		out[c.Kind] = true
	}
	return out
}
