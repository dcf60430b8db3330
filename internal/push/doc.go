// Package push debounces the Store's change events and merges them into push
// requests for the xDS layer, with the semantics of istiod's debounce
// (pilot/pkg/xds/discovery.go) and its tuning knobs PILOT_DEBOUNCE_AFTER,
// PILOT_DEBOUNCE_MAX and PILOT_ENABLE_EDS_DEBOUNCE.
//
// A Debouncer receives model.Events from Store.Subscribe (Enqueue never
// blocks), and its Run loop calls the push function with one merged Request
// once no event has arrived for DebounceAfter, or DebounceMax after the first
// event of the batch, whichever comes first. Pushes never overlap: a batch
// that becomes ready while the previous push is still running waits for it,
// and keeps merging events in the meantime.
//
// Beyond istiod, Options.LeadingEdge (on by default, MESHD_PUSH_LEADING_EDGE)
// pushes an isolated event (nothing pushed and no event within the last
// quiet period) at once, and debounces only the events that follow it: a
// single endpoint removal in a calm period reaches proxies in milliseconds,
// while a burst such as a rolling update is still batched. With LeadingEdge
// off the Debouncer behaves exactly like istiod's.
//
// The package owns its notion of time through Clock; FakeClock drives it
// deterministically in tests, here and in other packages. It knows nothing of
// Envoy or Kubernetes.
package push
