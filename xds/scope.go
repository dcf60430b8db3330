package xds

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// scopeState is the served config of one scope.
type scopeState struct {
	scope   model.Scope
	streams int
	// out and snap are the last snapshot that passed validation; nil until
	// one did. builtFrom is the Index out was built from: after compact
	// releases out, it is built again from there (scopeOutput).
	out       *translate.Output
	snap      *cachev3.Snapshot
	builtFrom *translate.Index
	// lastErr is why the newest build was not served, if it was not.
	lastErr error
}

// buildSnapshot translates, validates and versions one scope's config.
// Marshalled resources are remembered in memo, which belongs to x.
func buildSnapshot(x *translate.Index, memo *wireMemo, sc model.Scope) (*translate.Output, *cachev3.Snapshot, []typeWire, error) {
	out := buildOutput(x, sc)
	if err := translate.ValidateIn(x, out); err != nil {
		return nil, nil, nil, fmt.Errorf("scope %s: config failed validation, keeping the last good snapshot: %w", sc.Key(), err)
	}
	if outputFault != nil {
		out = outputFault(out)
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
	anys             []*anypb.Any // ms' wire forms, for wildcard responses
	entries          []mem.Buffer
}

func newTypeWire(typeURL, version string, names []string, ms []marshalled) typeWire {
	anys := make([]*anypb.Any, len(ms))
	for i, m := range ms {
		anys[i] = m.any
	}
	return typeWire{typeURL: typeURL, version: version, names: names, ms: ms, anys: anys, entries: entriesOf(ms)}
}

// toSnapshot marshals an Output (each resource value once per memo) into
// its wire form (for state-of-the-world streams) and a snapshot holding one
// content-hash version per type, so a type whose content is unchanged is not
// re-sent. Endpoints are served mesh-wide by the edsCache, not per scope.
func toSnapshot(out *translate.Output, memo *wireMemo) (*cachev3.Snapshot, []typeWire, error) {
	wire, err := outputWire(out, memo)
	if err != nil {
		return nil, nil, err
	}
	snap := &cachev3.Snapshot{}
	for _, w := range wire {
		// Versions only: both protocols are served from wire.
		snap.Resources[cachev3.GetResponseType(w.typeURL)] = cachev3.Resources{Version: w.version}
	}
	return snap, wire, nil
}

// outputWireKey keys an Output's wire form in the push's memo: scopes
// share Outputs (translate.Build), and views are shared by Outputs.
type outputWireKey struct{ out *translate.Output }

// outputWire is the wire form of out, computed once per memo.
func outputWire(out *translate.Output, memo *wireMemo) ([]typeWire, error) {
	if memo == nil {
		return wireOf(out, memo)
	}
	if v, ok := memo.m.Load(outputWireKey{out}); ok {
		return v.([]typeWire), nil
	}
	w, err := wireOf(out, memo)
	if err != nil {
		return nil, err
	}
	v, _ := memo.m.LoadOrStore(outputWireKey{out}, w)
	return v.([]typeWire), nil
}

// wireOf marshals every resource of out, per type (listeners, routes,
// clusters, secrets), versioned by content; an Output merged from a view
// as the view's wire form merged with its own resources' (splitWire).
func wireOf(out *translate.Output, memo *wireMemo) ([]typeWire, error) {
	if shared, own := out.Parts(); shared != nil && memo != nil {
		return splitWire(shared, own, memo)
	}
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
		wire = append(wire, newTypeWire(typeURL, typeVersion(names, ms), names, ms))
		return nil
	}
	var names []string
	var items []types.Resource
	for _, l := range out.Listeners {
		names, items = append(names, l.Name), append(items, l)
	}
	if err := add(resourcev3.ListenerType, names, items); err != nil {
		return nil, err
	}
	names, items = nil, nil
	for _, r := range out.Routes {
		names, items = append(names, r.Name), append(items, r)
	}
	if err := add(resourcev3.RouteType, names, items); err != nil {
		return nil, err
	}
	names, items = nil, nil
	for _, c := range out.Clusters {
		names, items = append(names, c.Name), append(items, c)
	}
	if err := add(resourcev3.ClusterType, names, items); err != nil {
		return nil, err
	}
	names, items = nil, nil
	for _, sec := range out.Secrets {
		names, items = append(names, sec.Name), append(items, sec)
	}
	if err := add(resourcev3.SecretType, names, items); err != nil {
		return nil, err
	}
	return wire, nil
}

// splitWire is the wire form of an Output merged from a view: the view's
// (once per push) merged with the scope's own resources'. A type without
// own resources has the view's version; one with them a hash of the
// view's version and the own resources' version.
func splitWire(shared, own *translate.Output, memo *wireMemo) ([]typeWire, error) {
	viewWire, err := outputWire(shared, memo)
	if err != nil {
		return nil, err
	}
	ownWire, err := wireOf(own, memo)
	if err != nil {
		return nil, err
	}
	out := make([]typeWire, len(viewWire))
	for i, vw := range viewWire {
		ow := ownWire[i]
		if len(ow.names) == 0 {
			out[i] = vw
			continue
		}
		names, ms := mergeSorted(vw.names, vw.ms, ow.names, ow.ms)
		sum := sha256.Sum256([]byte(vw.version + "\x00" + ow.version))
		out[i] = newTypeWire(vw.typeURL, hex.EncodeToString(sum[:8]), names, ms)
	}
	return out, nil
}

// mergeSorted merges two name-sorted lists of resources.
func mergeSorted(an []string, am []marshalled, bn []string, bm []marshalled) ([]string, []marshalled) {
	names := make([]string, 0, len(an)+len(bn))
	ms := make([]marshalled, 0, len(am)+len(bm))
	i, j := 0, 0
	for i < len(an) || j < len(bn) {
		if j == len(bn) || (i < len(an) && an[i] <= bn[j]) {
			names, ms = append(names, an[i]), append(ms, am[i])
			i++
		} else {
			names, ms = append(names, bn[j]), append(ms, bm[j])
			j++
		}
	}
	return names, ms
}
