package xds

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// What-if: the config the connected proxies would be sent if a change were
// applied, computed without applying it (meshctl what-if, /debug/whatif).
// The change is applied to a copy of the Snapshot (model.Snapshot.With),
// which is indexed, with the Snapshot itself, into two Indexes of the
// what-if's own: the served Index, its memos, the scopes and the streams
// are only read, so a what-if changes nothing a proxy is sent.

// MaxWhatIfScopes bounds the scopes one what-if builds; the report says
// when the selection held more.
const MaxWhatIfScopes = 500

// maxWhatIfDiff bounds the unified diff text of one report; the diffs of
// resources beyond it are left out (their names and sizes are kept).
const maxWhatIfDiff = 4 << 20

// Errors of WhatIf.
var (
	// ErrNotReady: no config has been built yet.
	ErrNotReady = errors.New("no config built yet")
	// ErrWhatIfBusy: another what-if is running (one runs at a time).
	ErrWhatIfBusy = errors.New("another what-if is running; try again")
	// ErrProxyNotConnected: the selected proxy has no stream.
	ErrProxyNotConnected = errors.New("not connected")
)

// whatIfSlot lets one what-if run at a time in the process: each builds
// two Indexes and up to MaxWhatIfScopes scopes twice.
var whatIfSlot = make(chan struct{}, 1)

// WhatIfSelector picks the connected scopes a what-if reports on. At most
// one field is set. None: every connected scope, reporting those whose
// config changes.
type WhatIfSelector struct {
	// Proxy is the node ID or "pod.namespace" of a connected proxy: its
	// scope (every proxy of the scope is pushed alike).
	Proxy string `json:"proxy,omitempty"`
	// Namespace selects the scopes of the proxies of a namespace.
	Namespace string `json:"namespace,omitempty"`
	// All reports every connected scope, unchanged ones too.
	All bool `json:"all,omitempty"`
}

// WhatIfReport is what a change would do, for /debug/whatif.
type WhatIfReport struct {
	// SnapshotSeq is the Snapshot the change was applied to.
	SnapshotSeq uint64 `json:"snapshotSeq"`
	// Objects are the objects the change names and what it does to each.
	Objects []WhatIfObject `json:"objects"`
	// Rejected is set when the change would cause config errors it did
	// not find (Errors) or a scope's config would fail validation.
	Rejected bool `json:"rejected"`
	// Changed is set when some selected scope's config would change.
	Changed bool `json:"changed"`
	// Errors are the config errors (provider and translator) that the
	// mesh with the change has and the current one does not; Cleared
	// those the change would fix.
	Errors  []model.ObjectError `json:"errors,omitempty"`
	Cleared []model.ObjectError `json:"clearedErrors,omitempty"`
	// ScopesSelected counts the connected scopes selected, ScopesBuilt
	// those compared (at most MaxWhatIfScopes), ScopesChanged those whose
	// config changes.
	ScopesSelected int  `json:"scopesSelected"`
	ScopesBuilt    int  `json:"scopesBuilt"`
	ScopesChanged  int  `json:"scopesChanged"`
	Truncated      bool `json:"truncated,omitempty"`
	// ProxiesPushed and BytesPushed total the scopes that would be pushed
	// (changed, and passing validation).
	ProxiesPushed int   `json:"proxiesPushed"`
	BytesPushed   int64 `json:"bytesPushed"`
	// Scopes are the selected scopes that change (all of them with
	// WhatIfSelector.All), sorted by key.
	Scopes []WhatIfScope `json:"scopes"`
	Notes  []string      `json:"notes,omitempty"`
}

// WhatIfObject is one object the change names.
type WhatIfObject struct {
	Kind      model.Kind `json:"kind"`
	Namespace string     `json:"namespace,omitempty"`
	Name      string     `json:"name"`
	// Action is create, update, unchanged, delete, absent (deleting what
	// does not exist) or invalid (see the report's errors).
	Action string `json:"action"`
}

// WhatIfScope is what one scope's proxies would be sent.
type WhatIfScope struct {
	Scope string `json:"scope"`
	// Proxies are the node IDs of the scope's connected proxies, sorted.
	Proxies []string `json:"proxies"`
	Changed bool     `json:"changed"`
	// Rejected is set when the new config fails validation
	// (ValidationErrors): it would not be served, the current stays.
	Rejected         bool     `json:"rejected,omitempty"`
	ValidationErrors []string `json:"validationErrors,omitempty"`
	// Types lists the resource types that change: listeners, routes,
	// clusters, endpoints, secrets.
	Types []WhatIfType `json:"types,omitempty"`
	// Bytes is what the scope's proxies would be sent: the marshalled size
	// of its added and changed resources times its proxies (0 if rejected).
	Bytes int64 `json:"bytes"`
}

// WhatIfType is the change of one resource type of a scope.
type WhatIfType struct {
	Type    string   `json:"type"`
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Changed []string `json:"changed,omitempty"`
	// BytesPerProxy is the marshalled size of the added and changed
	// resources.
	BytesPerProxy int64 `json:"bytesPerProxy"`
	// Diff is a unified diff of the changed resources rendered as YAML;
	// never for secrets, whose content is not shown.
	Diff string `json:"diff,omitempty"`
}

// whatIfTarget is one selected scope and its proxies.
type whatIfTarget struct {
	scope   model.Scope
	proxies []string
}

// WhatIf reports what the connected proxies selected by sel would be sent
// if changes (as a provider makes them) were applied to base (nil: the
// Snapshot of the served config), without applying them.
func (s *Server) WhatIf(base *model.Snapshot, changes []model.Change, sel WhatIfSelector) (*WhatIfReport, error) {
	select {
	case whatIfSlot <- struct{}{}:
		defer func() { <-whatIfSlot }()
	default:
		return nil, ErrWhatIfBusy
	}
	s.mu.Lock()
	served := s.index
	scopes := make(map[string]model.Scope, len(s.scopes))
	for key, ss := range s.scopes {
		scopes[key] = ss.scope
	}
	s.mu.Unlock()
	if served == nil {
		return nil, ErrNotReady
	}
	if base == nil {
		base = served.Snapshot()
	}
	targets, err := selectWhatIf(scopes, s.Proxies(), sel)
	if err != nil {
		return nil, err
	}
	changes = stampCreation(base, changes, time.Now())
	next, _ := base.With(changes)
	opts := translate.Options{Domain: s.opts.Domain, FilterGatewayClusters: s.opts.FilterGatewayClusters,
		ScopeGatewayToNamespace: s.opts.ScopeGatewayToNamespace}
	oldX := translate.NewIndexFrom(nil, base, opts)
	newX := translate.NewIndexFrom(oldX, next, opts)

	rep := &WhatIfReport{SnapshotSeq: base.Seq, Objects: objectActions(base, changes), ScopesSelected: len(targets),
		Scopes: []WhatIfScope{}}
	rep.Errors, rep.Cleared = newErrors(configErrors(oldX), configErrors(newX))
	if len(targets) > MaxWhatIfScopes {
		rep.Truncated = true
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d scopes selected; only the first %d (by key) were compared", len(targets), MaxWhatIfScopes))
		targets = targets[:MaxWhatIfScopes]
	}
	if len(targets) == 0 {
		rep.Notes = append(rep.Notes, "no connected proxy is selected: only the config errors are checked")
	}
	cmp := newComparer(maxWhatIfDiff)
	for _, t := range targets {
		sc := compareScope(cmp, oldX, newX, t)
		rep.ScopesBuilt++
		if sc.Changed {
			rep.Changed = true
			rep.ScopesChanged++
			if !sc.Rejected {
				rep.ProxiesPushed += len(sc.Proxies)
				rep.BytesPushed += sc.Bytes
			}
		}
		rep.Rejected = rep.Rejected || sc.Rejected
		if sc.Changed || sc.Rejected || sel.All {
			rep.Scopes = append(rep.Scopes, sc)
		}
	}
	if cmp.truncated {
		rep.Notes = append(rep.Notes, fmt.Sprintf("diffs beyond %d bytes are left out", maxWhatIfDiff))
	}
	rep.Rejected = rep.Rejected || len(rep.Errors) > 0
	return rep, nil
}

// selectWhatIf returns the selected scopes with their proxies, by key.
func selectWhatIf(scopes map[string]model.Scope, proxies []ProxyStatus, sel WhatIfSelector) ([]whatIfTarget, error) {
	set := 0
	for _, on := range []bool{sel.Proxy != "", sel.Namespace != "", sel.All} {
		if on {
			set++
		}
	}
	if set > 1 {
		return nil, errors.New("select at most one of proxy, namespace and all")
	}
	byScope := map[string][]string{}
	want := ""
	for _, p := range proxies {
		byScope[p.Scope] = append(byScope[p.Scope], p.NodeID)
		if sel.Proxy != "" && (p.NodeID == sel.Proxy || p.ID == sel.Proxy) {
			want = p.Scope
		}
	}
	if sel.Proxy != "" && want == "" {
		return nil, fmt.Errorf("proxy %q: %w", sel.Proxy, ErrProxyNotConnected)
	}
	var out []whatIfTarget
	for _, key := range slices.Sorted(maps.Keys(scopes)) {
		sc := scopes[key]
		if (want != "" && key != want) || (sel.Namespace != "" && sc.Namespace != sel.Namespace) {
			continue
		}
		ids := byScope[key]
		slices.Sort(ids)
		out = append(out, whatIfTarget{scope: sc, proxies: slices.Compact(ids)})
	}
	return out, nil
}

// compareScope builds a scope from both Indexes and compares the outputs.
func compareScope(cmp *comparer, oldX, newX *translate.Index, t whatIfTarget) WhatIfScope {
	oldOut, newOut := buildOutput(oldX, t.scope), buildOutput(newX, t.scope)
	sc := WhatIfScope{Scope: t.scope.Key(), Proxies: t.proxies, Types: cmp.outputs(oldOut, newOut)}
	if sc.Proxies == nil {
		sc.Proxies = []string{}
	}
	sc.Changed = len(sc.Types) > 0
	if sc.Changed {
		sc.ValidationErrors = newValidationErrors(translate.ValidateIn(oldX, oldOut), translate.ValidateIn(newX, newOut))
		sc.Rejected = len(sc.ValidationErrors) > 0
	}
	if !sc.Rejected {
		for _, ty := range sc.Types {
			sc.Bytes += ty.BytesPerProxy * int64(len(sc.Proxies))
		}
	}
	return sc
}
