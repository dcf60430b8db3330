package xds

import (
	"fmt"
	"sync"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// scopeState is the served config of one scope.
type scopeState struct {
	scope   model.Scope
	streams int
	// deltaStreams counts the delta streams among them: only scopes with
	// delta streams are put in the snapshot cache.
	deltaStreams int
	// out and snap are the last snapshot that passed validation; nil until one did.
	out  *translate.Output
	snap *cachev3.Snapshot
	// lastErr is why the newest build was not served, if it was not.
	lastErr error
}

// buildSnapshot translates, validates and versions one scope's config.
// Marshalled resources are remembered in memo, which belongs to x.
func buildSnapshot(x *translate.Index, memo *sync.Map, sc model.Scope) (*translate.Output, *cachev3.Snapshot, []typeWire, error) {
	out := translate.Build(x, sc)
	if err := translate.ValidateIn(x, out); err != nil {
		return nil, nil, nil, fmt.Errorf("scope %s: config failed validation, keeping the last good snapshot: %w", sc.Key(), err)
	}
	snap, wire, err := toSnapshot(out, memo)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("scope %s: %w", sc.Key(), err)
	}
	return out, snap, wire, nil
}

// typeWire is one type of a scope's config, marshalled, for the sharedCache.
type typeWire struct {
	typeURL, version string
	names            []string
	ms               []marshalled
}

// toSnapshot marshals an Output (each resource value once per memo) into
// its wire form (for state-of-the-world streams) and a snapshot holding one
// content-hash version per type, so a type whose content is unchanged is not
// re-sent. Endpoints are served mesh-wide by the edsCache, not per scope.
func toSnapshot(out *translate.Output, memo *sync.Map) (*cachev3.Snapshot, []typeWire, error) {
	snap := &cachev3.Snapshot{}
	var wire []typeWire
	add := func(typeURL string, names []string, items []types.Resource) error {
		ms := make([]marshalled, len(items))
		for i, r := range items {
			m, err := marshal(memo, typeURL, r)
			if err != nil {
				return fmt.Errorf("marshalling %s %s: %w", ShortType(typeURL), names[i], err)
			}
			ms[i] = m
		}
		v := typeVersion(names, ms)
		// Versions only: the resources are indexed for the snapshot cache
		// (deltaSnapshot) only while the scope has delta streams.
		snap.Resources[cachev3.GetResponseType(typeURL)] = cachev3.Resources{Version: v}
		wire = append(wire, typeWire{typeURL: typeURL, version: v, names: names, ms: ms})
		return nil
	}
	var names []string
	var items []types.Resource
	for _, l := range out.Listeners {
		names, items = append(names, l.Name), append(items, l)
	}
	if err := add(resourcev3.ListenerType, names, items); err != nil {
		return nil, nil, err
	}
	names, items = nil, nil
	for _, r := range out.Routes {
		names, items = append(names, r.Name), append(items, r)
	}
	if err := add(resourcev3.RouteType, names, items); err != nil {
		return nil, nil, err
	}
	names, items = nil, nil
	for _, c := range out.Clusters {
		names, items = append(names, c.Name), append(items, c)
	}
	if err := add(resourcev3.ClusterType, names, items); err != nil {
		return nil, nil, err
	}
	return snap, wire, nil
}

// deltaSnapshot is the snapshot of a scope's output for go-control-plane's
// snapshot cache, which serves delta streams, with versions's versions.
func deltaSnapshot(out *translate.Output, versions *cachev3.Snapshot) *cachev3.Snapshot {
	snap := &cachev3.Snapshot{}
	set := func(typeURL string, items []types.Resource) {
		i := cachev3.GetResponseType(typeURL)
		snap.Resources[i] = cachev3.NewResources(versions.Resources[i].Version, items)
	}
	var items []types.Resource
	for _, l := range out.Listeners {
		items = append(items, l)
	}
	set(resourcev3.ListenerType, items)
	items = nil
	for _, r := range out.Routes {
		items = append(items, r)
	}
	set(resourcev3.RouteType, items)
	items = nil
	for _, c := range out.Clusters {
		items = append(items, c)
	}
	set(resourcev3.ClusterType, items)
	return snap
}
