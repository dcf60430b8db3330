package xds

import (
	"context"
	"log/slog"
	"maps"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/meshd/meshd/internal/metrics"
	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/internal/push"
	"github.com/meshd/meshd/translate"
)

// Options configure a Server.
type Options struct {
	// Domain is the cluster DNS domain (default cluster.local).
	Domain  string
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// PushThrottle bounds how many scopes are rebuilt and handed to their
	// streams at once (PILOT_PUSH_THROTTLE); default min(15+5×GOMAXPROCS, 100).
	PushThrottle int
	// FilterGatewayClusters gives gateways only the clusters their routes
	// use (PILOT_FILTER_GATEWAY_CLUSTER_CONFIG).
	FilterGatewayClusters bool
	// ScopeGatewayToNamespace gives a gateway only the Gateways of its own
	// namespace (PILOT_SCOPE_GATEWAY_TO_NAMESPACE).
	ScopeGatewayToNamespace bool
}

// PushStatus describes the last push, for /debug/push_status.
type PushStatus struct {
	Seq     uint64   `json:"snapshotSeq"`
	Trigger []string `json:"trigger"`
	Events  int      `json:"events"`
	// EndpointsOnly is true when only EndpointSlices changed: the fast path
	// that writes the changed ClusterLoadAssignments and rebuilds only the
	// scopes whose non-EDS config can depend on endpoints.
	EndpointsOnly bool `json:"endpointsOnly"`
	// EndpointsUpdated and EndpointsRemoved count the ClusterLoadAssignments
	// whose content changed; only proxies watching them are sent anything.
	EndpointsUpdated int      `json:"endpointsUpdated"`
	EndpointsRemoved int      `json:"endpointsRemoved"`
	Clusters         []string `json:"changedEndpoints,omitempty"`
	// ScopesBuilt counts the scopes rebuilt, ScopesSkipped those that kept
	// their snapshot because no change of the push can reach them
	// (translate.Dependencies: a VirtualService, DestinationRule,
	// ServiceEntry or Sidecar they cannot see; an endpoint change that
	// leaves their non-EDS config alone). RebuildReasons counts the scopes
	// rebuilt per reason: the first change found that reaches the scope
	// ("VirtualService shop/reviews"), or "endpoints" (EndpointShape
	// changed), "never built", or why every scope was ("Gateway changed",
	// "first push"). Changed names the changed objects (at most 20).
	ScopesBuilt    int            `json:"scopesBuilt"`
	ScopesSkipped  int            `json:"scopesSkipped"`
	RebuildReasons map[string]int `json:"rebuildReasons,omitempty"`
	Changed        []string       `json:"changedConfigs,omitempty"`
	ScopesFailed   int            `json:"scopesFailed"`
	// ScopesChanged counts scopes whose served config changed: only their
	// proxies are sent anything (besides EDS).
	ScopesChanged int           `json:"scopesChanged"`
	Started       time.Time     `json:"started"`
	Duration      time.Duration `json:"durationNanos"`
	DebounceDelay time.Duration `json:"debounceNanos"`
}

// Server serves ADS from scope-keyed snapshots.
type Server struct {
	opts    Options
	log     *slog.Logger
	m       *metrics.Metrics
	shared  *sharedCache // scopes' published resources, for both protocols
	deltas  *deltaHub    // wakes a scope's delta streams when it is published
	eds     *edsCache
	tracker *tracker
	// ads is the ADS service every Register call adds.
	ads     *adsServer
	adsOnce sync.Once
	// shape is the EndpointShape of the last push's Index.
	shape string
	// origin is when the providers saw the oldest change of the newest push:
	// the start of meshd_config_propagation_seconds.
	origin atomic.Pointer[time.Time]
	// lastSent is when the last response was sent (UnixNano; compact.go).
	lastSent atomic.Int64
	// debug serves istio.io/debug requests (debugxds.go); debugRefused
	// counts those refused.
	debug        atomic.Pointer[DebugAccess]
	debugRefused *prometheus.CounterVec

	mu       sync.Mutex
	index    *translate.Index
	hashes   *wireMemo // marshalled resources of index's outputs (shared.go)
	scopes   map[string]*scopeState
	lastPush PushStatus
	logged   map[model.ObjectError]bool // translator errors already logged
	ready    atomic.Bool
	// built is when a scope was last built; compacted whether the memos
	// of translation have been released since (compact.go).
	built     time.Time
	compacted bool
}

// New returns a Server with no config; call PushSnapshot before serving.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	s := &Server{opts: opts, log: opts.Logger, m: opts.Metrics, scopes: map[string]*scopeState{}}
	if opts.PushThrottle <= 0 {
		opts.PushThrottle = min(15+5*runtime.GOMAXPROCS(0), 100)
		s.opts.PushThrottle = opts.PushThrottle
	}
	s.deltas = newDeltaHub()
	s.shared = newSharedCache(scopeHash{})
	s.eds = newEDSCache(s.log)
	s.tracker = newTracker(s)
	s.debugRefused = newDebugRefused(s.m.Registry)
	return s
}

// Register adds the ADS service (SotW and delta) to g. Its streams stop
// when ctx is done. g should be created with Codec(): without it every
// response is encoded (copied) per stream by grpc-go's codec. Register may
// be called for several gRPC servers (the plaintext and the secure port):
// they share one service, whose streams are numbered across both, and the
// ctx of the first call.
func (s *Server) Register(ctx context.Context, g *grpc.Server) {
	s.adsOnce.Do(func() {
		s.ads = newADSServer(ctx, mux(s.eds, s.shared), s.tracker)
		go s.compactWhenIdle(ctx)
	})
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s.ads)
}

// Ready reports whether a first snapshot has been built and served.
func (s *Server) Ready() bool { return s.ready.Load() }

// Push rebuilds config for a merged push request.
func (s *Server) Push(req push.Request) {
	var trigger []string
	for k := range req.Kinds {
		name := string(k)
		if name == "" {
			name = "ConfigError" // a document that failed to parse, reported by its source
		}
		trigger = append(trigger, name)
		s.m.PushTriggers.WithLabelValues(name).Inc()
	}
	sort.Strings(trigger)
	debounce := time.Duration(0)
	if !req.Start.IsZero() {
		debounce = time.Since(req.Start)
		s.m.DebounceTime.Observe(debounce.Seconds())
	}
	for _, c := range req.Changes {
		s.m.InboundUpdates.WithLabelValues(string(c.Kind)).Inc()
	}
	s.push(req.Snapshot, pushInfo{trigger: trigger, events: req.Events, debounce: debounce,
		endpointsOnly: req.EndpointsOnly, origin: req.First})
}

// PushSnapshot rebuilds config from snap (used at start-up).
func (s *Server) PushSnapshot(snap *model.Snapshot) {
	s.push(snap, pushInfo{trigger: []string{"startup"}})
}

// pushInfo describes why a push happens.
type pushInfo struct {
	trigger       []string
	events        int
	debounce      time.Duration
	endpointsOnly bool
	origin        time.Time // when the oldest change was seen; zero if unknown
}

// push indexes the snapshot once, updates the mesh-wide endpoints, and
// rebuilds the scopes with connected proxies (on the endpoint fast path only
// those whose non-EDS config can depend on endpoints), PushThrottle at a
// time. Unchanged types keep their version and are not resent.
func (s *Server) push(snap *model.Snapshot, pi pushInfo) {
	start := time.Now()
	s.mu.Lock()
	prev := s.index
	s.mu.Unlock()
	x := translate.NewIndexFrom(prev, snap, translate.Options{Domain: s.opts.Domain, FilterGatewayClusters: s.opts.FilterGatewayClusters,
		ScopeGatewayToNamespace: s.opts.ScopeGatewayToNamespace})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.index != nil && snap.Seq < s.index.Snapshot().Seq {
		return // a newer snapshot was pushed meanwhile
	}
	if !pi.origin.IsZero() {
		s.origin.Store(&pi.origin)
	}
	base := s.index // what the scopes' snapshots were built from (or are the same as)
	if old := s.index; old != nil {
		// What the previous Index memoised is not needed any more (scopes
		// keep their last outputs; carried values moved to x): free it
		// now rather than with the next compaction, which lowers the
		// push's peak.
		old.ReleaseMemos()
	}
	s.index, s.hashes = x, newWireMemo(x)
	s.recordConfigErrors(x)
	st := PushStatus{Seq: snap.Seq, Trigger: pi.trigger, Events: pi.events, Started: start,
		DebounceDelay: pi.debounce, EndpointsOnly: pi.endpointsOnly}
	if pi.endpointsOnly {
		gcDefers.hold()
	} else {
		gcDefers.release()
	}
	// Endpoints first, so that clusters new in this push find their
	// assignments when their proxies ask for them.
	updated, removed := s.eds.update(x.ClusterLoadAssignments())
	st.EndpointsUpdated, st.EndpointsRemoved = len(updated), len(removed)
	if len(updated) <= 20 {
		st.Clusters = updated
	}
	// On the endpoint fast path, scopes are rebuilt only when endpoints
	// changed something besides ClusterLoadAssignments (service accounts,
	// port numbers, DNS endpoints), or when they were never built.
	shape := x.EndpointShape()
	shapeChanged := shape != s.shape
	s.shape = shape
	// Besides endpoints, a scope is rebuilt only when a config change can
	// reach it (dependency-tracked rebuilds, translate.Changes); the others
	// keep their snapshot and are sent nothing.
	var deps *translate.Dependencies
	forced := ""
	if base != nil && base.Snapshot() == snap {
		forced = "forced push" // the same snapshot again (ForcePush): everything
	} else if !pi.endpointsOnly {
		deps = translate.Changes(base, x)
		st.Changed = capList(deps.Changed(), 20)
	}
	var todo []*scopeState
	for _, key := range slices.Sorted(maps.Keys(s.scopes)) {
		ss := s.scopes[key]
		reason := forced
		if reason == "" {
			reason = rebuildReason(ss, deps, shapeChanged)
		}
		if reason != "" {
			todo = append(todo, ss)
			st.noteRebuild(reason)
		} else {
			st.ScopesSkipped++
		}
	}
	st.ScopesBuilt = len(todo)
	st.ScopesChanged, st.ScopesFailed = s.rebuildAll(byNamespaceRoundRobin(todo))
	if len(todo) > 0 {
		s.noteBuild()
	}
	st.Duration = time.Since(start)
	s.lastPush = st
	s.ready.Store(true)
	s.log.Info("pushed config", "snapshot", snap.Seq, "trigger", pi.trigger, "endpointsOnly", pi.endpointsOnly,
		"endpointsUpdated", st.EndpointsUpdated, "scopes", st.ScopesBuilt, "skipped", st.ScopesSkipped, "changed", st.ScopesChanged,
		"failed", st.ScopesFailed, "duration", st.Duration)
}

// rebuildReason says why a push rebuilds a scope, "" when it keeps its
// snapshot: deps is the push's config changes (nil on the endpoint fast
// path), shapeChanged whether endpoints changed non-EDS config.
func rebuildReason(ss *scopeState, deps *translate.Dependencies, shapeChanged bool) string {
	switch {
	case ss.snap == nil:
		// Never built (its proxy connected before the first push, or every
		// build failed): built now whatever the push.
		return "never built"
	case ss.lastErr != nil && deps != nil:
		// It serves an older build: config may have fixed it (not tried
		// again on the endpoint fast path, as before).
		return "last build failed"
	case deps != nil:
		if ok, why := deps.Affects(ss.scope); ok {
			return why
		}
	}
	if shapeChanged && endpointsShape(ss.scope) {
		return "endpoints"
	}
	return ""
}

// noteRebuild counts one scope rebuilt for reason.
func (st *PushStatus) noteRebuild(reason string) {
	if st.RebuildReasons == nil {
		st.RebuildReasons = map[string]int{}
	}
	st.RebuildReasons[reason]++
}

// capList returns at most n of list.
func capList(list []string, n int) []string {
	if len(list) > n {
		return list[:n:n]
	}
	return list
}

// endpointsShape reports whether a scope's listeners or clusters (not just
// its EDS) can depend on endpoints and pods: a sidecar's inbound listener
// takes its target ports from its workload's EndpointSlices, and ISTIO_MUTUAL
// clusters of sidecars and gateways verify the service accounts of the
// endpoints. Proxyless gRPC scopes get neither.
func endpointsShape(sc model.Scope) bool {
	return sc.Generator != model.GeneratorGRPC
}

// rebuildAll rebuilds scopes, PushThrottle at a time, and returns how many
// changed what they serve and how many failed. s.mu must be held.
func (s *Server) rebuildAll(todo []*scopeState) (changed, failed int) {
	var mu sync.Mutex
	throttled(s.opts.PushThrottle, todo, func(ss *scopeState) {
		ok, diff := s.rebuildLocked(ss)
		mu.Lock()
		defer mu.Unlock()
		if !ok {
			failed++
		} else if diff {
			changed++
		}
	})
	return changed, failed
}

// byNamespaceRoundRobin orders scopes one namespace after another, in
// turn: the first scope of every namespace, then the second of every
// namespace, and so on. The scopes of a namespace share its view, which
// the first of them to run builds while the others wait for it; in key
// order (namespace by namespace) the rebuild workers would wait on one
// view at a time instead of building several at once.
func byNamespaceRoundRobin(todo []*scopeState) []*scopeState {
	var order []string
	byNS := map[string][]*scopeState{}
	for _, ss := range todo {
		ns := ss.scope.Namespace
		if _, ok := byNS[ns]; !ok {
			order = append(order, ns)
		}
		byNS[ns] = append(byNS[ns], ss)
	}
	out := make([]*scopeState, 0, len(todo))
	for round := 0; len(out) < len(todo); round++ {
		for _, ns := range order {
			if list := byNS[ns]; round < len(list) {
				out = append(out, list[round])
			}
		}
	}
	return out
}

// throttled calls fn for every item, at most limit at a time, and returns
// when all calls have.
func throttled[T any](limit int, items []T, fn func(T)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(limit, 1))
	for _, it := range items {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(it)
		}()
	}
	wg.Wait()
}

// rebuildLocked rebuilds one scope from the current index and hands it to the
// cache. On failure the last good snapshot stays served. It reports whether
// the build is served and whether it differs from what was served. s.mu must
// be held (rebuilds of distinct scopes may run in parallel under it).
func (s *Server) rebuildLocked(ss *scopeState) (ok, changed bool) {
	out, snap, wire, err := buildSnapshot(s.index, s.hashes, ss.scope)
	if err != nil {
		ss.lastErr = err
		s.m.SnapshotRejects.Inc()
		s.log.Error("not serving new config", "scope", ss.scope.Key(), "error", err)
		return false, false
	}
	changed = ss.snap == nil || !sameVersions(ss.snap, snap)
	ss.out, ss.builtFrom, ss.lastErr = out, s.index, nil
	if !changed {
		return true, false
	}
	// Clusters first, then listeners and routes: a stream is sent a new
	// cluster before a listener or route that names it (istiod's order;
	// their assignments were written before the scopes were rebuilt).
	// Secrets go before listeners too (istiod sends them last): a gateway
	// asking for a new listener's secret finds it published.
	key := ss.scope.Key()
	for _, typeURL := range []string{resourcev3.ClusterType, resourcev3.SecretType, resourcev3.ListenerType, resourcev3.RouteType} {
		for _, w := range wire {
			if w.typeURL == typeURL {
				s.shared.publish(key, w)
			}
		}
	}
	ss.snap = snap
	s.setDeltaSnapshot(ss)
	return true, true
}

// sameVersions reports whether two snapshots carry the same version of
// every type (versions are content hashes).
func sameVersions(a, b *cachev3.Snapshot) bool {
	for i := range a.Resources {
		if a.Resources[i].Version != b.Resources[i].Version {
			return false
		}
	}
	return true
}

// acquireScope makes sure the scope has a built snapshot (building it on first
// use) and counts one more stream on it.
func (s *Server) acquireScope(sc model.Scope, delta bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := sc.Key()
	ss, ok := s.scopes[key]
	if !ok {
		ss = &scopeState{scope: sc}
		s.scopes[key] = ss
		if s.index != nil {
			s.rebuildLocked(ss)
			s.noteBuild()
		}
	}
	ss.streams++
}

// releaseScope drops one stream from the scope and forgets the scope when no
// stream uses it any more.
func (s *Server) releaseScope(sc model.Scope, delta bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := sc.Key()
	ss, ok := s.scopes[key]
	if !ok {
		return
	}
	if ss.streams--; ss.streams <= 0 {
		delete(s.scopes, key)
		s.shared.clear(key)
	}
}

// setDeltaSnapshot wakes the scope's delta streams after its resources
// were published: each sends what changed for it (delta.go). s.mu is held.
func (s *Server) setDeltaSnapshot(ss *scopeState) {
	s.deltas.wake(ss.scope.Key())
}

// recordConfigErrors updates the per-kind error gauge, and logs translator
// errors (unknown hosts, conflicts) once when they appear and when they clear.
// Provider errors are logged by their provider.
func (s *Server) recordConfigErrors(x *translate.Index) {
	s.m.ConfigErrors.Reset()
	for _, e := range configErrors(x) {
		s.m.ConfigErrors.WithLabelValues(string(e.Kind)).Inc()
	}
	s.m.Services.Set(float64(len(x.Snapshot().Services())))
	seen := make(map[model.ObjectError]bool, len(x.Errors()))
	for _, e := range x.Errors() {
		seen[e] = true
		if !s.logged[e] {
			s.log.Warn("config rejected", "kind", e.Kind, "namespace", e.Namespace, "name", e.Name,
				"source", e.Source, "field", e.Field, "error", e.Message)
		}
	}
	for e := range s.logged {
		if !seen[e] {
			s.log.Info("config error cleared", "kind", e.Kind, "namespace", e.Namespace, "name", e.Name, "field", e.Field)
		}
	}
	s.logged = seen
}

// configErrors joins provider errors (conversion, validation) with the
// translator's (unknown hosts, conflicts).
func configErrors(x *translate.Index) []model.ObjectError {
	return append(x.Snapshot().Errors(), x.Errors()...)
}
