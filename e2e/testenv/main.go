package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// skipReason says why Main left its Env nil; Need skips with it.
var skipReason = "testenv.Main was not called"

// Main starts one Env for a test package, runs the tests and stops it.
// Call it from TestMain:
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{}, &env)) }
//
// If the binaries are not built and MESHD_REQUIRE_TESTENV is unset, *env
// stays nil and the tests still run; each one calls Need to skip. Any other
// start-up failure, or a missing binary when MESHD_REQUIRE_TESTENV is set,
// fails the package. It returns the exit code for os.Exit.
func Main(m *testing.M, opts Options, env **Env) int {
	if opts.Logf == nil {
		opts.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}
	e, err := Start(context.Background(), opts)
	switch {
	case errors.Is(err, ErrNotBuilt) && os.Getenv("MESHD_REQUIRE_TESTENV") == "":
		skipReason = err.Error() + "; set MESHD_REQUIRE_TESTENV=1 to fail instead"
		return m.Run()
	case err != nil:
		fmt.Fprintln(os.Stderr, "testenv:", err)
		return 1
	}
	*env = e
	code := m.Run()
	if code != 0 {
		fmt.Fprintf(os.Stderr, "testenv logs (dir %s):\n%s", e.Dir, e.logTails(8<<10))
	}
	if err := e.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "testenv: stopping:", err)
		return 1
	}
	return code
}

// Need returns env, skipping the test when Main could not start it because
// the binaries are not built. It fails the test if etcd or the API server
// has died.
func Need(t testing.TB, env *Env) *Env {
	t.Helper()
	if env == nil {
		t.Skip(skipReason)
	}
	if err := env.Err(); err != nil {
		t.Fatalf("testenv: %v\n%s", err, env.logTails(8<<10))
	}
	return env
}

// RepoRoot returns the root of the meshd repository: the nearest directory
// at or above the working directory whose go.mod declares
// github.com/meshd/meshd.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if isMeshdModule(filepath.Join(dir, "go.mod")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: not inside the meshd repository (no go.mod for github.com/meshd/meshd)")
		}
		dir = parent
	}
}

// isMeshdModule reports whether the go.mod at path is meshd's main module.
func isMeshdModule(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if fields := strings.Fields(s.Text()); len(fields) == 2 && fields[0] == "module" {
			return fields[1] == "github.com/meshd/meshd"
		}
	}
	return false
}
