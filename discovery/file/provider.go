package file

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/meshd/meshd/discovery/convert"
	"github.com/meshd/meshd/internal/model"
)

// DefaultInterval is the default poll interval.
const DefaultInterval = 250 * time.Millisecond

// Provider keeps a Store in step with a directory of YAML manifests. Set the
// exported fields (or use New) before the first Load or Run and do not change
// them afterwards. Load and Run may be called from different goroutines;
// scans never overlap.
type Provider struct {
	// Dir is the directory read recursively for *.yaml and *.yml files.
	Dir string
	// Store receives the changes.
	Store *model.Store
	// Domain is the cluster DNS domain of Service hostnames (default
	// "cluster.local").
	Domain string
	// Interval is how often Run polls the directory (default 250ms).
	Interval time.Duration
	// Logger receives per-object errors and their clearing (default
	// slog.Default()).
	Logger *slog.Logger

	mu      sync.Mutex
	files   map[string]*fileEntry  // by relative path
	stats   map[string]observation // what polls saw of each file
	state   map[string]*entry      // by model.Change key
	lastErr string                 // last directory-level error logged by Run
}

// New returns a Provider for dir feeding store, with default settings.
func New(dir string, store *model.Store) *Provider {
	return &Provider{Dir: dir, Store: store}
}

// Load scans the directory once and applies the result to the Store before
// returning, so the first Snapshot holds everything. Per-object problems go to
// the Store as errors; Load fails only when the directory cannot be read, in
// which case the Store is left unchanged.
func (p *Provider) Load() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.scan(false)
}

// Run polls the directory every Interval, applying every change it finds,
// until ctx is done; then it returns nil. It scans once immediately. A
// directory that cannot be read is logged and retried; the Store keeps the
// last state read.
func (p *Provider) Run(ctx context.Context) error {
	t := time.NewTicker(p.interval())
	defer t.Stop()
	for {
		p.poll()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (p *Provider) poll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.scan(p.state != nil)
	switch {
	case err != nil && err.Error() != p.lastErr:
		p.logger().Error("cannot read manifest directory", "dir", p.Dir, "error", err)
		p.lastErr = err.Error()
	case err == nil && p.lastErr != "":
		p.logger().Info("manifest directory readable again", "dir", p.Dir)
		p.lastErr = ""
	}
}

// scan reads the directory, rebuilds the desired state and applies the
// difference. p.mu must be held.
//
// With settle set (polls after the first scan), see scanFile.
func (p *Provider) scan(settle bool) error {
	if p.Store == nil {
		return fmt.Errorf("file provider %s: no Store", p.Dir)
	}
	seen := time.Now()
	refs, err := listFiles(p.Dir)
	if err != nil {
		return fmt.Errorf("file provider: listing %s: %w", p.Dir, err)
	}
	files := make(map[string]*fileEntry, len(refs))
	ordered := make([]*fileEntry, 0, len(refs))
	stats := make(map[string]observation, len(refs))
	changed := p.state == nil
	for _, ref := range refs {
		prev := p.files[ref.rel]
		e := p.scanFile(ref, settle, seen, stats)
		if e == nil {
			continue // gone, or a new file still being written
		}
		if prev == nil || e.hash != prev.hash || !sameError(e.readErr, prev.readErr) {
			changed = true
		}
		files[ref.rel] = e
		ordered = append(ordered, e)
	}
	p.stats = stats
	// Every file found was matched by path, so equal counts mean equal sets.
	changed = changed || len(files) != len(p.files)
	p.files = files
	if !changed {
		return nil
	}
	next := desiredState(ordered)
	changes := diff(p.state, next, seen, p.logger())
	p.state = next
	p.Store.Apply(changes)
	return nil
}

// scanFile returns the entry for one file, or nil if it is gone (or new and
// not settled yet), recording what it saw in stats.
//
// With settle set, a changed file is read only once its size and modification
// time have stayed the same for settleTime, and only if they did not change
// while it was read, so a file caught half-written (os.WriteFile truncates
// first) is not mistaken for its final content; until then its previous
// content stays in effect. Writers that replace files atomically (rename) are
// never seen half-written.
func (p *Provider) scanFile(ref fileRef, settle bool, now time.Time, stats map[string]observation) *fileEntry {
	st, ok, statErr := statFile(ref)
	if !ok {
		return nil
	}
	prev := p.files[ref.rel]
	obs, known := p.stats[ref.rel]
	if !known || !obs.st.same(st) {
		obs = observation{st: st, since: now}
	}
	stats[ref.rel] = obs
	if settle && statErr == nil && now.Sub(obs.since) < p.settleTime() {
		return prev
	}
	return readFile(ref, st, statErr, prev, p.domain(), settle)
}

// settleTime is how long a changed file must keep its size and modification
// time before a poll reads it: half the poll interval, at least 100ms.
func (p *Provider) settleTime() time.Duration {
	return max(p.interval()/2, 100*time.Millisecond)
}

func (p *Provider) domain() string {
	if p.Domain == "" {
		return convert.DefaultDomain
	}
	return p.Domain
}

func (p *Provider) interval() time.Duration {
	if p.Interval <= 0 {
		return DefaultInterval
	}
	return p.Interval
}

func (p *Provider) logger() *slog.Logger {
	if p.Logger == nil {
		return slog.Default()
	}
	return p.Logger
}
