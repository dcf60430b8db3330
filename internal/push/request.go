package push

import (
	"time"

	"github.com/meshd/meshd/internal/model"
)

// Request is one merged push request handed to the xDS layer. It is a value:
// its slice and map are never mutated once the Request is returned, and
// receivers must not mutate them either.
type Request struct {
	// Changes are all merged changes, in arrival order.
	Changes []model.Change
	// Kinds is the set of kinds touched by Changes.
	Kinds map[model.Kind]bool
	// Snapshot is the newest (highest Seq) snapshot among the merged events.
	Snapshot *model.Snapshot
	// First is the earliest non-zero Event.Seen among the merged events, the
	// origin for propagation metrics (pilot_proxy_convergence_time).
	First time.Time
	// Start is when the first event of this batch entered the Debouncer.
	Start time.Time
	// Events is the number of events merged.
	Events int
	// EndpointsOnly is true when every change is of kind
	// model.KindEndpointSlice or model.KindPod (pods only feed endpoint
	// labels, service accounts and localities): the xDS layer may take the
	// EDS fast path. A rolling update changes both.
	EndpointsOnly bool
}

// requestFromEvent returns the Request for a single event that entered the
// Debouncer at time at.
func requestFromEvent(ev model.Event, at time.Time) Request {
	return Request{
		Changes:       ev.Changes,
		Kinds:         ev.Kinds(),
		Snapshot:      ev.Snapshot,
		First:         ev.Seen,
		Start:         at,
		Events:        1,
		EndpointsOnly: endpointsOnly(ev.Changes),
	}
}

// endpointsOnly reports whether changes is non-empty and only touches
// EndpointSlices.
func endpointsOnly(changes []model.Change) bool {
	for _, c := range changes {
		if c.Kind != model.KindEndpointSlice && c.Kind != model.KindPod {
			return false
		}
	}
	return len(changes) > 0
}

// Merge returns a new Request holding r's changes followed by o's. The zero
// Request is the identity. Neither r nor o is modified.
func (r Request) Merge(o Request) Request {
	var out Request
	out.absorb(r)
	out.absorb(o)
	return out
}

// absorb merges o into r in place. r's Changes and Kinds must be owned by r
// (the zero Request owns nothing yet and is fine): they are appended to and
// written, while o's are only read.
func (r *Request) absorb(o Request) {
	if o.Events == 0 && len(o.Changes) == 0 {
		return
	}
	if r.Events == 0 && len(r.Changes) == 0 {
		r.EndpointsOnly = o.EndpointsOnly
	} else {
		r.EndpointsOnly = r.EndpointsOnly && o.EndpointsOnly
	}
	r.Changes = append(r.Changes, o.Changes...)
	if r.Kinds == nil {
		r.Kinds = make(map[model.Kind]bool, len(o.Kinds))
	}
	for k, v := range o.Kinds {
		if v {
			r.Kinds[k] = true
		}
	}
	if o.Snapshot != nil && (r.Snapshot == nil || o.Snapshot.Seq > r.Snapshot.Seq) {
		r.Snapshot = o.Snapshot
	}
	r.First = earliest(r.First, o.First)
	r.Start = earliest(r.Start, o.Start)
	r.Events += o.Events
}

// earliest returns the earlier of a and b, ignoring zero times.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
