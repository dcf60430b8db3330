package xds

import (
	"log/slog"
	"maps"
	"slices"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// edsCache serves ClusterLoadAssignments mesh-wide from one LinearCache:
// EDS does not depend on the proxy's scope, and a LinearCache answers each
// watch only when one of the resources it watches changed, with only those
// resources. So an endpoint change reaches only the proxies that watch the
// affected clusters, and carries only their assignments.
//
// Only assignments whose content changed are written to the LinearCache:
// a push that leaves an assignment as it was sends nobody anything.
type edsCache struct {
	lc     *cachev3.LinearCache // delta streams
	sotw   *sotwEDS             // state-of-the-world streams
	hashes map[string]string    // EDS service name → content hash of what lc holds
	// last is the assignment each hash was computed from: the next Index
	// shares the assignments of services whose endpoints did not change
	// (translate.NewIndexFrom), which need no marshalling to compare.
	last map[string]*endpoint.ClusterLoadAssignment
	log  *slog.Logger
}

func newEDSCache(log *slog.Logger) *edsCache {
	return &edsCache{lc: cachev3.NewLinearCache(resourcev3.EndpointType, cachev3.WithVersionPrefix("eds-")),
		sotw: newSotwEDS(), hashes: map[string]string{},
		last: map[string]*endpoint.ClusterLoadAssignment{}, log: log}
}

// update makes the cache hold exactly clas, writing only what changed, and
// returns the names updated and removed. An assignment that fails
// validation is not served (its last good version stays) and is logged.
func (e *edsCache) update(clas map[string]*endpoint.ClusterLoadAssignment) (updated, removed []string) {
	toUpdate := map[string]types.Resource{}
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
		if err := e.lc.UpdateResources(toUpdate, removed); err != nil {
			e.log.Error("updating endpoints", "error", err)
		}
		e.sotw.update(changed, removed)
	}
	return updated, removed
}

// get returns the assignments currently served for names (all if none given).
func (e *edsCache) get(names ...string) []*endpoint.ClusterLoadAssignment {
	all := e.lc.GetResources()
	if len(names) == 0 {
		names = slices.Sorted(maps.Keys(all))
	}
	var out []*endpoint.ClusterLoadAssignment
	for _, n := range names {
		if r, ok := all[n]; ok {
			out = append(out, r.(*endpoint.ClusterLoadAssignment))
		}
	}
	return out
}

// mux routes EDS watches to the mesh-wide edsCache (sotwEDS or the
// LinearCache), other state-of-the-world watches to the sharedCache and
// other delta watches to the per-scope snapshot cache.
func mux(eds *edsCache, shared *sharedCache, scoped cachev3.Cache) *cachev3.MuxCache {
	const edsKey, sotwEDSKey, sharedKey, scopeKey = "eds", "sotw-eds", "shared", "scope"
	return &cachev3.MuxCache{
		Classify: func(r *cachev3.Request) string {
			if r.GetTypeUrl() == resourcev3.EndpointType {
				return sotwEDSKey
			}
			return sharedKey
		},
		ClassifyDelta: func(r *cachev3.DeltaRequest) string {
			if r.GetTypeUrl() == resourcev3.EndpointType {
				return edsKey
			}
			return scopeKey
		},
		Caches: map[string]cachev3.Cache{edsKey: eds.lc, sotwEDSKey: eds.sotw, sharedKey: shared, scopeKey: scoped},
	}
}
