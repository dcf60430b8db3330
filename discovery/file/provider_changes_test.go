package file

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

const svcWeb = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  ports: [{name: http, port: 80}]
`

const drWeb = `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: web, namespace: shop}
spec:
  host: web
  subsets: [{name: v1, labels: {version: v1}}, {name: v2, labels: {version: v2}}]
`

// vsWeb returns a VirtualService splitting traffic w1/w2 whose first match
// uses regex.
func vsWeb(w1, w2 int, regex string) string {
	return fmt.Sprintf(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: web, namespace: shop}
spec:
  hosts: [web]
  http:
  - match: [{uri: {regex: %q}}]
    route:
    - {destination: {host: web, subset: v1}, weight: %d}
    - {destination: {host: web, subset: v2}, weight: %d}
`, regex, w1, w2)
}

func docs(d ...string) string { return strings.Join(d, "---\n") }

func weights(snap *model.Snapshot) []int32 {
	o, ok := snap.Object(model.KindVirtualService, "shop", "web")
	if !ok {
		return nil
	}
	var out []int32
	for _, d := range o.(*model.Config).Spec.(*networking.VirtualService).GetHttp()[0].GetRoute() {
		out = append(out, d.GetWeight())
	}
	return out
}

func TestBrokenDocumentsDoNotStopOthers(t *testing.T) {
	dir := t.TempDir()
	badField := strings.Replace(vsWeb(50, 50, "^/"), "route:", "rout:", 1)
	badField = strings.Replace(badField, "name: web,", "name: bad-field,", 1)
	badRegex := strings.Replace(vsWeb(50, 50, "(unclosed"), "name: web,", "name: bad-regex,", 1)
	writeFile(t, dir, "mixed.yaml", docs(svcWeb, "kind: Service\nmetadata: {name: [oops\n", badField, badRegex, drWeb))
	p, logs := newProvider(t, dir)
	require.NoError(t, p.Load())
	snap := p.Store.Current()

	_, ok := snap.Object(model.KindService, "shop", "web")
	assert.True(t, ok, "good Service before the broken documents")
	_, ok = snap.Object(model.KindDestinationRule, "shop", "web")
	assert.True(t, ok, "good DestinationRule after the broken documents")
	assert.Equal(t, 0, snap.Count(model.KindVirtualService))

	errs := snap.Errors()
	require.Len(t, errs, 3)
	assert.Equal(t, model.ObjectError{Source: "mixed.yaml#2", Message: errs[0].Message}, errs[0])
	assert.Contains(t, errs[0].Message, "invalid YAML")
	assert.Contains(t, errs[0].Message, "line 8", "line number within the file")
	assert.Equal(t, model.ObjectError{Kind: model.KindVirtualService, Namespace: "shop", Name: "bad-field",
		Source: "mixed.yaml#3", Field: "spec.http[0].rout", Message: "unknown field"}, errs[1])
	assert.Equal(t, "mixed.yaml#4", errs[2].Source)
	assert.Equal(t, "bad-regex", errs[2].Name)
	assert.Equal(t, "spec.http[0].match[0].uri.regex", errs[2].Field)

	out := logs.String()
	assert.Equal(t, 3, strings.Count(out, "level=WARN"), out)
	assert.Contains(t, out, `field=spec.http[0].rout`)
	assert.Contains(t, out, `source=mixed.yaml#4`)
}

func TestRunFollowsEdits(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "web.yaml", docs(svcWeb, drWeb, vsWeb(80, 20, "^/api")))
	p, logs := newProvider(t, dir)
	require.NoError(t, p.Load())
	require.Equal(t, []int32{80, 20}, weights(p.Store.Current()))
	runProvider(t, p)
	eventually := func(msg string, cond func(*model.Snapshot) bool) {
		t.Helper()
		require.Eventually(t, func() bool { return cond(p.Store.Current()) }, time.Second, 5*time.Millisecond, msg)
	}
	vsError := func(s *model.Snapshot) (model.ObjectError, bool) {
		return errorFor(s, func(e model.ObjectError) bool { return e.Kind == model.KindVirtualService && e.Name == "web" })
	}

	// Same size, rewritten immediately: size and mtime may not change.
	writeFile(t, dir, "web.yaml", docs(svcWeb, drWeb, vsWeb(70, 30, "^/api")))
	eventually("weight edit", func(s *model.Snapshot) bool { return assert.ObjectsAreEqual([]int32{70, 30}, weights(s)) })

	// A broken edit keeps the last good object and records the error.
	writeFile(t, dir, "web.yaml", docs(svcWeb, drWeb, vsWeb(10, 90, "(bad")))
	eventually("error recorded", func(s *model.Snapshot) bool { _, ok := vsError(s); return ok })
	e, _ := vsError(p.Store.Current())
	assert.Equal(t, "spec.http[0].match[0].uri.regex", e.Field)
	assert.Equal(t, "web.yaml#3", e.Source)
	assert.Equal(t, []int32{70, 30}, weights(p.Store.Current()), "last good VirtualService stays")
	time.Sleep(50 * time.Millisecond) // several polls: the error is logged once
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), logs.String())

	// Fixing it clears the error.
	writeFile(t, dir, "web.yaml", docs(svcWeb, drWeb, vsWeb(10, 90, "^/v2")))
	eventually("fixed", func(s *model.Snapshot) bool {
		_, bad := vsError(s)
		return !bad && len(weights(s)) == 2 && weights(s)[0] == 10
	})
	assert.Contains(t, logs.String(), "config error cleared")

	// Deleting the file deletes its objects.
	require.NoError(t, os.Remove(filepath.Join(dir, "web.yaml")))
	eventually("deleted", func(s *model.Snapshot) bool {
		return s.Count(model.KindService)+s.Count(model.KindDestinationRule)+s.Count(model.KindVirtualService) == 0
	})
	assert.Empty(t, p.Store.Current().Errors())
}

func TestDeletingBrokenObjectClearsError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", docs(svcWeb, vsWeb(80, 20, "(bad")))
	writeFile(t, dir, "b.yaml", "key: [broken\n")
	p, _ := newProvider(t, dir)
	require.NoError(t, p.Load())
	require.Len(t, p.Store.Current().Errors(), 2)

	writeFile(t, dir, "a.yaml", svcWeb)
	require.NoError(t, os.Remove(filepath.Join(dir, "b.yaml")))
	require.NoError(t, p.Load())
	assert.Empty(t, p.Store.Current().Errors())
	assert.Equal(t, 1, p.Store.Current().Count(model.KindService))
}

func TestParseErrorFixed(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", strings.Replace(svcWeb, "metadata: {name: web,", "metadata: {name: [web,", 1))
	p, _ := newProvider(t, dir)
	require.NoError(t, p.Load())
	errs := p.Store.Current().Errors()
	require.Len(t, errs, 1)
	assert.Equal(t, "a.yaml#1", errs[0].Source)

	writeFile(t, dir, "a.yaml", svcWeb)
	require.NoError(t, p.Load())
	assert.Empty(t, p.Store.Current().Errors())
	assert.Equal(t, 1, p.Store.Current().Count(model.KindService))
}

func TestDuplicateObjects(t *testing.T) {
	dir := t.TempDir()
	other := strings.Replace(svcWeb, "port: 80", "port: 81", 1)
	writeFile(t, dir, "a.yaml", svcWeb)
	writeFile(t, dir, "b/b.yaml", drWeb+"---\n"+other)
	p, _ := newProvider(t, dir)
	require.NoError(t, p.Load())
	snap := p.Store.Current()
	o, ok := snap.Object(model.KindService, "shop", "web")
	require.True(t, ok)
	assert.Equal(t, uint32(80), o.(*model.Service).Ports[0].Port, "first in path order wins")
	errs := snap.Errors()
	require.Len(t, errs, 1)
	assert.Equal(t, model.KindService, errs[0].Kind)
	assert.Equal(t, "web", errs[0].Name)
	assert.Equal(t, "b/b.yaml#2", errs[0].Source)
	assert.Contains(t, errs[0].Message, "a.yaml#1")

	require.NoError(t, os.Remove(filepath.Join(dir, "a.yaml")))
	require.NoError(t, p.Load())
	snap = p.Store.Current()
	assert.Empty(t, snap.Errors())
	o, ok = snap.Object(model.KindService, "shop", "web")
	require.True(t, ok)
	assert.Equal(t, uint32(81), o.(*model.Service).Ports[0].Port)
}

func TestFileSelection(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "sub/dir/web.yml", svcWeb)
	writeFile(t, dir, ".hidden/dr.yaml", drWeb)
	writeFile(t, dir, "notes.md", "kind: [not yaml we read\n")
	writeFile(t, dir, "..2024_01_01/dr.yaml", drWeb) // ConfigMap volume layout
	require.NoError(t, os.Symlink(filepath.Join(dir, "..2024_01_01/dr.yaml"), filepath.Join(dir, "dr.yaml")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "sub"), filepath.Join(dir, "linked-dir.yaml")))
	p, _ := newProvider(t, dir)
	require.NoError(t, p.Load())
	snap := p.Store.Current()
	assert.Empty(t, snap.Errors())
	assert.Equal(t, 1, snap.Count(model.KindService))
	dr := snap.Configs(model.KindDestinationRule)
	require.Len(t, dr, 1)
	assert.Equal(t, "dr.yaml#1", dr[0].Source, "symlinked file read under its own name, hidden copy skipped")
}

func TestChangesCarrySeenAndQuietPolls(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "a.yaml", docs(svcWeb, drWeb, vsWeb(80, 20, "(bad")))
	p, _ := newProvider(t, dir)
	var events atomic.Int32
	var seen []time.Time
	p.Store.Subscribe(func(ev model.Event) {
		events.Add(1)
		for _, c := range ev.Changes {
			seen = append(seen, c.Seen)
		}
	})
	before := time.Now()
	require.NoError(t, p.Load())
	after := time.Now()
	require.Equal(t, int32(1), events.Load(), "one Apply per scan")
	require.Len(t, seen, 3)
	for _, s := range seen {
		assert.False(t, s.Before(before) || s.After(after), "Seen %v is the scan time", s)
		assert.Equal(t, seen[0], s, "one scan, one time")
	}
	for i := 0; i < 5; i++ {
		require.NoError(t, p.Load())
	}
	assert.Equal(t, int32(1), events.Load(), "unchanged directory publishes nothing")
}

func TestRunWaitsForDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "later")
	p, logs := newProvider(t, dir)
	runProvider(t, p)
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "cannot read manifest directory") },
		time.Second, 5*time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	assert.Equal(t, 1, strings.Count(logs.String(), "cannot read manifest directory"), "logged once")
	writeFile(t, dir, "a.yaml", svcWeb)
	require.Eventually(t, func() bool { return p.Store.Current().Count(model.KindService) == 1 },
		time.Second, 5*time.Millisecond)
}
