package file

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/meshd/meshd/internal/model"
)

// entry is one key of the desired state: an object or an error.
type entry struct {
	kind            model.Kind
	namespace, name string
	obj             any
	err             *model.ObjectError
	sum             [sha256.Size]byte
}

func (e *entry) change() model.Change {
	return model.Change{Kind: e.kind, Namespace: e.namespace, Name: e.name, Object: e.obj, Err: e.err}
}

// sourceEntry is keyed by a source ("a.yaml#2" or "a.yaml") rather than an
// object: a document without a usable identity, a duplicate, or an unreadable
// file.
func sourceEntry(source string, err *model.ObjectError, sum [sha256.Size]byte) *entry {
	return &entry{name: source, err: err, sum: sum}
}

// desiredState builds the full desired state from the files, in path order.
// Keys are model.Change keys. When two documents define the same object the
// first one wins and the second is reported, keyed by its source.
func desiredState(files []*fileEntry) map[string]*entry {
	out := map[string]*entry{}
	owner := map[string]string{} // object key → source defining it
	for _, f := range files {
		if f.readErr != nil {
			e := sourceEntry(f.rel, f.readErr, [sha256.Size]byte{})
			out[e.change().Key()] = e
		}
		for i := range f.docs {
			d := &f.docs[i]
			if !d.identified {
				e := sourceEntry(d.source, d.err, d.sum)
				out[e.change().Key()] = e
				continue
			}
			e := &entry{kind: d.kind, namespace: d.namespace, name: d.name, obj: d.obj, err: d.err, sum: d.sum}
			key := e.change().Key()
			if first, dup := owner[key]; dup {
				e = sourceEntry(d.source, &model.ObjectError{
					Kind: d.kind, Namespace: d.namespace, Name: d.name, Source: d.source,
					Message: fmt.Sprintf("duplicate object: already defined in %s; this copy is ignored", first),
				}, d.sum)
				out[e.change().Key()] = e
				continue
			}
			owner[key] = d.source
			out[key] = e
		}
	}
	return out
}

// diff returns the changes that turn prev into next, sorted by key, and logs
// errors that appear or clear. Unchanged entries of next are replaced by
// their prev counterparts so object pointers stay stable across scans.
func diff(prev, next map[string]*entry, seen time.Time, log *slog.Logger) []model.Change {
	var changes []model.Change
	for _, key := range slices.Sorted(maps.Keys(next)) {
		n, o := next[key], prev[key]
		if o != nil && o.sum == n.sum && sameError(o.err, n.err) {
			next[key] = o
			continue
		}
		c := n.change()
		c.Seen = seen
		changes = append(changes, c)
		switch {
		case n.err != nil && (o == nil || !sameError(o.err, n.err)):
			logError(log, n.err)
		case n.err == nil && o != nil && o.err != nil:
			logCleared(log, o.err, "fixed")
		}
		if s, ok := n.obj.(*model.Secret); ok {
			if note := s.Expiry(seen); note != "" {
				log.Warn("TLS credential not valid now", "namespace", s.Namespace, "name", s.Name, "source", s.Source, "note", note)
			}
		}
	}
	for _, key := range slices.Sorted(maps.Keys(prev)) {
		if _, ok := next[key]; ok {
			continue
		}
		o := prev[key]
		changes = append(changes, model.Change{Kind: o.kind, Namespace: o.namespace, Name: o.name, Seen: seen})
		if o.err != nil {
			logCleared(log, o.err, "removed")
		}
	}
	sort.SliceStable(changes, func(i, j int) bool { return changes[i].Key() < changes[j].Key() })
	return changes
}

func sameError(a, b *model.ObjectError) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func logError(log *slog.Logger, e *model.ObjectError) {
	log.Warn("invalid config object", "kind", string(e.Kind), "namespace", e.Namespace, "name", e.Name,
		"source", e.Source, "field", e.Field, "error", e.Message)
}

func logCleared(log *slog.Logger, e *model.ObjectError, why string) {
	log.Info("config error cleared", "kind", string(e.Kind), "namespace", e.Namespace, "name", e.Name,
		"source", e.Source, "reason", why)
}
