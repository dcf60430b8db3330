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
	// out and snap are the last snapshot that passed validation; nil until one did.
	out  *translate.Output
	snap *cachev3.Snapshot
	// lastErr is why the newest build was not served, if it was not.
	lastErr error
}

// buildSnapshot translates, validates and versions one scope's config.
// Resource hashes are remembered in hashes, which belongs to x.
func buildSnapshot(x *translate.Index, hashes *sync.Map, sc model.Scope) (*translate.Output, *cachev3.Snapshot, error) {
	out := translate.Build(x, sc)
	if err := translate.ValidateIn(x, out); err != nil {
		return nil, nil, fmt.Errorf("scope %s: config failed validation, keeping the last good snapshot: %w", sc.Key(), err)
	}
	snap, err := toSnapshot(out, hashes)
	if err != nil {
		return nil, nil, fmt.Errorf("scope %s: %w", sc.Key(), err)
	}
	return out, snap, nil
}

// toSnapshot packs an Output into a go-control-plane snapshot with one
// content-hash version per type, so a type whose content is unchanged is not
// re-sent.
func toSnapshot(out *translate.Output, hashes *sync.Map) (*cachev3.Snapshot, error) {
	snap := &cachev3.Snapshot{}
	set := func(typeURL string, names []string, items []types.Resource) error {
		v, err := contentVersionWith(hashes, names, items)
		if err != nil {
			return fmt.Errorf("hashing %s: %w", ShortType(typeURL), err)
		}
		snap.Resources[cachev3.GetResponseType(typeURL)] = cachev3.NewResources(v, items)
		return nil
	}
	var names []string
	var items []types.Resource
	reset := func() { names, items = nil, nil }
	for _, l := range out.Listeners {
		names, items = append(names, l.Name), append(items, l)
	}
	if err := set(resourcev3.ListenerType, names, items); err != nil {
		return nil, err
	}
	reset()
	for _, r := range out.Routes {
		names, items = append(names, r.Name), append(items, r)
	}
	if err := set(resourcev3.RouteType, names, items); err != nil {
		return nil, err
	}
	reset()
	for _, c := range out.Clusters {
		names, items = append(names, c.Name), append(items, c)
	}
	if err := set(resourcev3.ClusterType, names, items); err != nil {
		return nil, err
	}
	// Endpoints are served mesh-wide by the edsCache, not per scope.
	return snap, nil
}
