package xds

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	serverv3 "github.com/envoyproxy/go-control-plane/pkg/server/v3"
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
}

// PushStatus describes the last push, for /debug/push_status.
type PushStatus struct {
	Seq           uint64        `json:"snapshotSeq"`
	Trigger       []string      `json:"trigger"`
	Events        int           `json:"events"`
	ScopesBuilt   int           `json:"scopesBuilt"`
	ScopesFailed  int           `json:"scopesFailed"`
	Started       time.Time     `json:"started"`
	Duration      time.Duration `json:"durationNanos"`
	DebounceDelay time.Duration `json:"debounceNanos"`
}

// Server serves ADS from scope-keyed snapshots.
type Server struct {
	opts    Options
	log     *slog.Logger
	m       *metrics.Metrics
	cache   cachev3.SnapshotCache
	tracker *tracker

	mu       sync.Mutex
	index    *translate.Index
	scopes   map[string]*scopeState
	lastPush PushStatus
	logged   map[model.ObjectError]bool // translator errors already logged
	ready    atomic.Bool
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
	s.cache = cachev3.NewSnapshotCache(false, scopeHash{}, nil)
	s.tracker = newTracker(s)
	return s
}

// Register adds the ADS service (SotW and delta) to g. The go-control-plane
// server stops its streams when ctx is done.
func (s *Server) Register(ctx context.Context, g *grpc.Server) {
	srv := serverv3.NewServer(ctx, s.cache, s.tracker)
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, srv)
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
	s.push(req.Snapshot, trigger, req.Events, debounce)
}

// PushSnapshot rebuilds config from snap (used at start-up).
func (s *Server) PushSnapshot(snap *model.Snapshot) { s.push(snap, []string{"startup"}, 0, 0) }

// push indexes the snapshot once and rebuilds every scope with connected
// proxies. Unchanged types keep their version and are not resent.
func (s *Server) push(snap *model.Snapshot, trigger []string, events int, debounce time.Duration) {
	start := time.Now()
	x := translate.NewIndex(snap, translate.Options{Domain: s.opts.Domain})
	s.mu.Lock()
	defer s.mu.Unlock()
	s.index = x
	s.recordConfigErrors(x)
	st := PushStatus{Seq: snap.Seq, Trigger: trigger, Events: events, Started: start, DebounceDelay: debounce}
	for _, key := range slices.Sorted(maps.Keys(s.scopes)) {
		st.ScopesBuilt++
		if !s.rebuildLocked(s.scopes[key]) {
			st.ScopesFailed++
		}
	}
	st.Duration = time.Since(start)
	s.lastPush = st
	s.ready.Store(true)
	s.log.Info("pushed config", "snapshot", snap.Seq, "trigger", trigger, "scopes", st.ScopesBuilt,
		"failed", st.ScopesFailed, "duration", st.Duration)
}

// rebuildLocked rebuilds one scope from the current index and hands it to the
// cache. On failure the last good snapshot stays served. s.mu must be held.
func (s *Server) rebuildLocked(ss *scopeState) bool {
	out, snap, err := buildSnapshot(s.index, ss.scope)
	if err != nil {
		ss.lastErr = err
		s.m.SnapshotRejects.Inc()
		s.log.Error("not serving new config", "scope", ss.scope.Key(), "error", err)
		return false
	}
	ss.out, ss.snap, ss.lastErr = out, snap, nil
	if err := s.cache.SetSnapshot(context.Background(), ss.scope.Key(), snap); err != nil {
		s.log.Error("setting snapshot", "scope", ss.scope.Key(), "error", err)
		return false
	}
	return true
}

// acquireScope makes sure the scope has a built snapshot (building it on first
// use) and counts one more stream on it.
func (s *Server) acquireScope(sc model.Scope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := sc.Key()
	ss, ok := s.scopes[key]
	if !ok {
		ss = &scopeState{scope: sc}
		s.scopes[key] = ss
		if s.index != nil {
			s.rebuildLocked(ss)
		}
	}
	ss.streams++
}

// releaseScope drops one stream from the scope and forgets the scope when no
// stream uses it any more.
func (s *Server) releaseScope(sc model.Scope) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := sc.Key()
	ss, ok := s.scopes[key]
	if !ok {
		return
	}
	if ss.streams--; ss.streams <= 0 {
		delete(s.scopes, key)
		s.cache.ClearSnapshot(key)
	}
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
