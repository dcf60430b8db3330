package push

import (
	"testing"
	"time"

	"github.com/meshd/meshd/internal/model"
	"github.com/stretchr/testify/assert"
)

func req(seq uint64, seen, start time.Duration, kinds ...model.Kind) Request {
	ev := model.Event{Snapshot: &model.Snapshot{Seq: seq}}
	if seen >= 0 {
		ev.Seen = at(seen)
	}
	for _, k := range kinds {
		ev.Changes = append(ev.Changes, model.Change{Kind: k, Name: string(k)})
	}
	return requestFromEvent(ev, at(start))
}

func TestRequestFromEvent(t *testing.T) {
	for _, tc := range []struct {
		name  string
		kinds []model.Kind
		want  bool
	}{
		{"endpoints only", []model.Kind{model.KindEndpointSlice, model.KindEndpointSlice}, true},
		{"pods count as endpoints", []model.Kind{model.KindPod}, true},
		{"rolling update: slices and pods", []model.Kind{model.KindEndpointSlice, model.KindPod}, true},
		{"a namespace is not", []model.Kind{model.KindEndpointSlice, model.KindNamespace}, false},
		{"mixed", []model.Kind{model.KindEndpointSlice, model.KindService}, false},
		{"no changes", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, req(1, 0, 0, tc.kinds...).EndpointsOnly)
		})
	}
}

func TestRequestMerge(t *testing.T) {
	a := req(2, 5*time.Millisecond, 10*time.Millisecond, model.KindService)
	b := req(1, 3*time.Millisecond, 20*time.Millisecond, model.KindEndpointSlice, model.KindService)
	m := a.Merge(b)

	assert.Equal(t, append(append([]model.Change{}, a.Changes...), b.Changes...), m.Changes)
	assert.Equal(t, map[model.Kind]bool{model.KindService: true, model.KindEndpointSlice: true}, m.Kinds)
	assert.Same(t, a.Snapshot, m.Snapshot, "highest Seq wins, not the last merged")
	assert.Equal(t, at(3*time.Millisecond), m.First)
	assert.Equal(t, at(10*time.Millisecond), m.Start)
	assert.Equal(t, 2, m.Events)
	assert.False(t, m.EndpointsOnly)

	// Inputs are untouched.
	assert.Len(t, a.Changes, 1)
	assert.Equal(t, map[model.Kind]bool{model.KindService: true}, a.Kinds)
	assert.Equal(t, 1, a.Events)
}

func TestRequestMergeIdentityAndZeroTimes(t *testing.T) {
	e := req(1, -1, 0, model.KindEndpointSlice) // Seen unset
	assert.Equal(t, e, Request{}.Merge(e))
	assert.Equal(t, e, e.Merge(Request{}))

	f := req(2, 7*time.Millisecond, 1*time.Millisecond, model.KindEndpointSlice)
	m := e.Merge(f)
	assert.True(t, m.EndpointsOnly)
	assert.Equal(t, at(7*time.Millisecond), m.First, "zero Seen is ignored")
	assert.Equal(t, t0, m.Start)
	assert.Same(t, f.Snapshot, m.Snapshot)
}

func TestRequestMergeDoesNotAlias(t *testing.T) {
	a := Request{}.Merge(req(1, 0, 0, model.KindService))
	a.Changes = append(make([]model.Change, 0, 8), a.Changes...) // spare capacity a careless append would reuse
	m1 := a.Merge(req(2, 0, 0, model.KindGateway))
	m2 := a.Merge(req(3, 0, 0, model.KindSidecar))
	assert.Equal(t, model.KindGateway, m1.Changes[1].Kind)
	assert.Equal(t, model.KindSidecar, m2.Changes[1].Kind)
	m1.Kinds[model.KindPod] = true
	assert.False(t, a.Kinds[model.KindPod])
}

func TestOptionsDefaults(t *testing.T) {
	d := DefaultOptions()
	assert.Equal(t, 100*time.Millisecond, d.DebounceAfter)
	assert.Equal(t, 10*time.Second, d.DebounceMax)
	assert.True(t, d.EnableEDSDebounce)
	assert.True(t, d.LeadingEdge)
	assert.NotNil(t, d.Clock)

	w := Options{DebounceMax: time.Minute}.WithDefaults()
	assert.Equal(t, DefaultDebounceAfter, w.DebounceAfter)
	assert.Equal(t, time.Minute, w.DebounceMax)
	assert.False(t, w.EnableEDSDebounce)
	assert.False(t, w.LeadingEdge, "the zero value keeps istiod's semantics")
	assert.NotNil(t, w.Clock)
}
