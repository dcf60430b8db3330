package xds

import (
	"log/slog"
	"maps"
	"slices"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// edsCache serves ClusterLoadAssignments mesh-wide: EDS does not depend on
// the proxy's scope. State-of-the-world streams are answered by sotwEDS,
// delta streams by deltaEDS; both hold the same marshalled assignments and
// answer a stream only when one of the assignments it watches changed,
// with only those. So an endpoint change reaches only the proxies that
// watch the affected clusters, and carries only their assignments.
//
// Only assignments whose content changed are handed on: a push that
// leaves an assignment as it was sends nobody anything.
type edsCache struct {
	sotw   *sotwEDS          // state-of-the-world streams
	delta  *deltaEDS         // delta streams
	hashes map[string]string // EDS service name → content hash of what is served
	// last is the assignment each hash was computed from: the next Index
	// shares the assignments of services whose endpoints did not change
	// (translate.NewIndexFrom), which need no marshalling to compare.
	last map[string]*endpoint.ClusterLoadAssignment
	log  *slog.Logger
}

func newEDSCache(log *slog.Logger) *edsCache {
	return &edsCache{sotw: newSotwEDS(), delta: newDeltaEDS(), hashes: map[string]string{},
		last: map[string]*endpoint.ClusterLoadAssignment{}, log: log}
}

// update makes the cache hold exactly clas, writing only what changed, and
// returns the names updated and removed. An assignment that fails
// validation is not served (its last good version stays) and is logged.
func (e *edsCache) update(clas map[string]*endpoint.ClusterLoadAssignment) (updated, removed []string) {
	toUpdate := map[string]*endpoint.ClusterLoadAssignment{}
	changed := map[string]marshalled{}
	for _, name := range slices.Sorted(maps.Keys(clas)) {
		cla := clas[name]
		if e.last[name] == cla {
			continue // the very assignment last compared: unchanged
		}
		e.last[name] = cla
		m, err := marshal(nil, resourcev3.EndpointType, cla) // once: its hash decides, its bytes are served
		if err != nil || e.hashes[name] == m.hash {
			continue
		}
		if err := cla.ValidateAll(); err != nil {
			e.log.Error("not serving invalid ClusterLoadAssignment", "cluster", name, "error", err)
			continue
		}
		if cla.GetClusterName() != name {
			// A delta Resource carries the name encoded with it (encodeEntry).
			e.log.Error("not serving ClusterLoadAssignment under another name", "cluster", name, "clusterName", cla.GetClusterName())
			continue
		}
		toUpdate[name], changed[name] = cla, m
		e.hashes[name] = m.hash
		updated = append(updated, name)
	}
	for name := range e.last {
		if _, ok := clas[name]; !ok {
			delete(e.last, name)
		}
	}
	for name := range e.hashes {
		if _, ok := clas[name]; !ok {
			removed = append(removed, name)
			delete(e.hashes, name)
		}
	}
	slices.Sort(removed)
	if len(toUpdate) > 0 || len(removed) > 0 {
		e.sotw.update(changed, removed)
		e.delta.update(changed, toUpdate, removed)
	}
	e.delta.prime()
	return updated, removed
}

// get returns the assignments currently served for names (all if none given).
func (e *edsCache) get(names ...string) []*endpoint.ClusterLoadAssignment {
	return e.delta.assignments(names...)
}

// mux routes state-of-the-world EDS watches to the mesh-wide sotwEDS and
// the other state-of-the-world watches to the sharedCache. Delta streams
// use no watches (delta.go).
func mux(eds *edsCache, shared *sharedCache) *cachev3.MuxCache {
	const sotwEDSKey, sharedKey = "sotw-eds", "shared"
	return &cachev3.MuxCache{
		Classify: func(r *cachev3.Request) string {
			if r.GetTypeUrl() == resourcev3.EndpointType {
				return sotwEDSKey
			}
			return sharedKey
		},
		Caches: map[string]cachev3.Cache{sotwEDSKey: eds.sotw, sharedKey: shared},
	}
}
