package envoygolden

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/e2e/testenv"
)

// TestEnvoyAcceptsGoldens loads every translate/testdata case into its own
// real Envoy over ADS, in parallel (go test -parallel bounds how many at
// once), and fails a case Envoy rejects or ignores, with Envoy's message.
func TestEnvoyAcceptsGoldens(t *testing.T) {
	version, err := harness.EnvoyVersion(envoyBin)
	require.NoError(t, err)
	t.Logf("envoy: %s", version)
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	dirs, err := CaseDirs(filepath.Join(root, "translate", "testdata"))
	require.NoError(t, err)
	require.NotEmpty(t, dirs, "no golden cases under translate/testdata")

	var mu sync.Mutex
	results := map[string]string{}
	start := time.Now()
	t.Run("case", func(t *testing.T) {
		for _, dir := range dirs {
			name := filepath.Base(dir)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				res := runCase(t, dir)
				mu.Lock()
				results[name] = res
				mu.Unlock()
			})
		}
	})
	names := make([]string, 0, len(results))
	for n := range results {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "\n  %-32s %s", n, results[n])
	}
	t.Logf("%d of %d golden cases against %s in %s:%s", len(results), len(dirs), version, time.Since(start).Round(100*time.Millisecond), b.String())
}

// runCase loads one case into Envoy and returns a one-line result.
func runCase(t *testing.T, dir string) string {
	c, err := LoadCase(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPlan(c, func() int { return harness.FreePort(t) }, t.TempDir())
	require.NoError(t, err)
	for _, n := range p.Notes {
		t.Log("plan: " + n)
	}
	v := Run(t, envoyBin, p)
	for _, n := range v.Notes {
		t.Log("note: " + n)
	}
	names := p.Names()
	summary := fmt.Sprintf("%d listeners, %d route configs, %d clusters, %d endpoints, %d secrets; settled in %s",
		len(names["listeners"]), len(names["routes"]), len(names["clusters"]), len(names["endpoints"]), len(p.Secrets),
		v.Took.Round(10*time.Millisecond))
	if len(v.Problems) > 0 {
		t.Errorf("Envoy did not take golden case %s (translate/testdata/%s):\n%s", c.Name, c.Name, strings.Join(v.Problems, "\n"))
		return "REJECTED: " + firstLine(v.Problems) + " (" + summary + ")"
	}
	t.Log("accepted: " + summary)
	if len(v.Notes) > 0 {
		return fmt.Sprintf("ok (%d notes in the case log): %s", len(v.Notes), summary)
	}
	return "ok: " + summary
}

func firstLine(problems []string) string {
	for _, p := range problems {
		if strings.Contains(p, "NACK") {
			return p
		}
	}
	return problems[0]
}
