package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/testenv"
)

// EnvoyBinary returns the real Envoy the suites run: $MESHD_ENVOY_BIN, or
// bin/envoy of the repository (installed by `make envoy`). A missing binary
// is an error, never a reason to skip.
func EnvoyBinary() (string, error) {
	if b := os.Getenv("MESHD_ENVOY_BIN"); b != "" {
		return b, nil
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	b := filepath.Join(root, "bin", "envoy")
	if _, err := os.Stat(b); err != nil {
		return "", fmt.Errorf("real Envoy not found at %s (run `make envoy`): %w", b, err)
	}
	return b, nil
}

// EnvoyVersion returns `envoy --version`'s line.
func EnvoyVersion(bin string) (string, error) {
	out, err := exec.Command(bin, "--version").CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// Envoy is a running Envoy process.
type Envoy struct {
	// AdminURL is its admin interface, e.g. http://127.0.0.1:15000.
	AdminURL  string
	logBuffer // what Envoy logged (Logs)
	done      chan struct{}
	stopOnce  sync.Once
	stop      func()
}

// Stop ends Envoy (SIGTERM, then SIGKILL after 10 s) and waits for it;
// later calls do nothing. The test's cleanup calls it too.
func (e *Envoy) Stop() { e.stopOnce.Do(e.stop) }

// Exited reports whether the process has ended.
func (e *Envoy) Exited() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// StartEnvoy runs bin with the bootstrap (YAML or JSON) and admin port
// adminPort, waits until its admin interface answers, and stops it at the
// end of the test. Hot restart is disabled, so several Envoys may run at
// once. On failure the test log gets Envoy's logs.
func StartEnvoy(t testing.TB, bin string, bootstrap []byte, adminPort int, extraArgs ...string) *Envoy {
	t.Helper()
	return StartEnvoyAs(t, 0, bin, bootstrap, adminPort, extraArgs...)
}

// StartEnvoyAs is StartEnvoy with Envoy running as user and group uid (0:
// this process's), e.g. Istio's proxy user 1337 so that iptables rules can
// tell Envoy's own connections from the application's.
func StartEnvoyAs(t testing.TB, uid uint32, bin string, bootstrap []byte, adminPort int, extraArgs ...string) *Envoy {
	t.Helper()
	return StartEnvoyWith(t, EnvoyOptions{UID: uid}, bin, bootstrap, adminPort, extraArgs...)
}

// EnvoyOptions are how an Envoy process runs.
type EnvoyOptions struct {
	// UID is the user and group Envoy runs as (0: this process's).
	UID uint32
	// Net, if set, is the network namespace Envoy runs in; its admin must
	// then listen on Net.PeerIP (the bootstrap's admin address).
	Net *ChildNet
}

// StartEnvoyWith is StartEnvoy with options.
func StartEnvoyWith(t testing.TB, o EnvoyOptions, bin string, bootstrap []byte, adminPort int, extraArgs ...string) *Envoy {
	t.Helper()
	dir, err := os.MkdirTemp("", "envoy-bootstrap")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755)) // readable by uid
	path := filepath.Join(dir, "bootstrap.yaml")
	require.NoError(t, os.WriteFile(path, bootstrap, 0o644))
	adminHost := "127.0.0.1"
	if o.Net != nil {
		adminHost = o.Net.PeerIP
	}
	e := &Envoy{AdminURL: "http://" + net.JoinHostPort(adminHost, strconv.Itoa(adminPort)), done: make(chan struct{})}
	args := append([]string{bin, "-c", path, "--disable-hot-restart", "--concurrency", "1",
		"--log-level", "warn", "--drain-time-s", "1"}, extraArgs...)
	if o.Net != nil {
		// nsenter joins the namespace as root, drops to the user, then
		// execs Envoy (same process: signals reach Envoy).
		id := strconv.Itoa(int(o.UID))
		args = append([]string{"nsenter", "--net=" + o.Net.Path, "--setuid", id, "--setgid", id, "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = e, e
	if o.UID != 0 && o.Net == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: o.UID, Gid: o.UID}}
	}
	require.NoError(t, cmd.Start())
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(e.done) }()
	e.stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-e.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-e.done
		}
	}
	t.Cleanup(func() {
		e.Stop()
		if t.Failed() || os.Getenv("MESHD_E2E_LOGS") != "" {
			t.Logf("envoy logs (exit: %v):\n%s", waitErr, e.Logs())
		}
	})
	require.Eventually(t, func() bool {
		if e.Exited() {
			return false
		}
		resp, err := http.Get(e.AdminURL + "/server_info")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 30*time.Second, 50*time.Millisecond, "envoy admin never answered; logs:\n%s", e.Logs())
	return e
}

// Get fetches an admin path and returns the body.
func (e *Envoy) Get(t testing.TB, path string) string {
	t.Helper()
	resp, err := http.Get(e.AdminURL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", path, b)
	return string(b)
}

// Stats returns Envoy's counters and gauges (admin /stats, text format) by
// name. Histograms are left out.
func (e *Envoy) Stats(t testing.TB) map[string]uint64 {
	t.Helper()
	out := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(e.Get(t, "/stats")))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(val, 10, 64); err == nil {
			out[name] = n
		}
	}
	return out
}

// Counter returns one stat, 0 if Envoy does not have it.
func (e *Envoy) Counter(t testing.TB, name string) uint64 {
	t.Helper()
	return e.Stats(t)[name]
}

// Rejected returns every xDS update_rejected counter that is not zero:
// cluster_manager.cds, listener_manager.lds, each route config's rds, each
// cluster's EDS, and secrets.
func (e *Envoy) Rejected(t testing.TB) map[string]uint64 {
	t.Helper()
	bad := map[string]uint64{}
	for name, v := range e.Stats(t) {
		if strings.HasSuffix(name, ".update_rejected") && v != 0 {
			bad[name] = v
		}
	}
	return bad
}

// RequireNoRejects fails the test if Envoy rejected any xDS update, listing
// the counters and the warnings Envoy logged about them.
func (e *Envoy) RequireNoRejects(t testing.TB) {
	t.Helper()
	bad := e.Rejected(t)
	if len(bad) == 0 {
		return
	}
	names := make([]string, 0, len(bad))
	for n, v := range bad {
		names = append(names, fmt.Sprintf("%s=%d", n, v))
	}
	sort.Strings(names)
	require.Failf(t, "Envoy rejected config", "%s\nenvoy logs:\n%s", strings.Join(names, "\n"), e.rejectionLines())
}

// rejectionLines returns the lines of Envoy's log that explain a rejection.
func (e *Envoy) rejectionLines() string {
	var keep []string
	for _, l := range strings.Split(e.Logs(), "\n") {
		if strings.Contains(l, "rejected") || strings.Contains(l, "gRPC config for") || strings.Contains(l, "error") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// WaitStat waits until stat reaches at least min and returns its value.
func (e *Envoy) WaitStat(t testing.TB, stat string, min uint64, within time.Duration) uint64 {
	t.Helper()
	var v uint64
	assert.Eventually(t, func() bool {
		v = e.Stats(t)[stat]
		return v >= min
	}, within, 20*time.Millisecond, "envoy stat %s stayed below %d", stat, min)
	return v
}

// ConfigDump returns /config_dump with endpoints (JSON).
func (e *Envoy) ConfigDump(t testing.TB) string {
	t.Helper()
	return e.Get(t, "/config_dump?include_eds")
}

// DynamicCluster returns the cluster Envoy received over CDS by that name
// (its config_dump JSON, active or warming), nil if it has none.
func (e *Envoy) DynamicCluster(t testing.TB, name string) map[string]any {
	t.Helper()
	var dump struct {
		Configs []struct {
			Type    string                             `json:"@type"`
			Active  []struct{ Cluster map[string]any } `json:"dynamic_active_clusters"`
			Warming []struct{ Cluster map[string]any } `json:"dynamic_warming_clusters"`
		} `json:"configs"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.Get(t, "/config_dump")), &dump))
	for _, c := range dump.Configs {
		for _, list := range [][]struct{ Cluster map[string]any }{c.Active, c.Warming} {
			for _, x := range list {
				if x.Cluster["name"] == name {
					return x.Cluster
				}
			}
		}
	}
	return nil
}
