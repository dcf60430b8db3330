package harness

import (
	"bytes"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/testenv"
)

// BuildMeshctl builds cmd/meshctl into the test's temporary directory and
// returns its path.
func BuildMeshctl(t testing.TB) string {
	t.Helper()
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	bin := filepath.Join(t.TempDir(), "meshctl")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/meshctl")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "building meshctl: %s", out)
	return bin
}

// RunMeshctl runs meshctl and returns its stdout, stderr and exit status.
func RunMeshctl(t testing.TB, bin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return o.String(), e.String(), exit.ExitCode()
	}
	require.NoError(t, err)
	return o.String(), e.String(), 0
}

// TableRows splits a meshctl table on runs of two or more spaces, by first
// column.
func TableRows(out string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var cells []string
		for _, c := range strings.Split(line, "  ") {
			if c = strings.TrimSpace(c); c != "" {
				cells = append(cells, c)
			}
		}
		if len(cells) > 0 {
			rows[cells[0]] = cells[1:]
		}
	}
	return rows
}
