package harness

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

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
	// Envoy dies with the test binary, even one killed by a timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if o.UID != 0 && o.Net == nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: o.UID, Gid: o.UID}
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
	return e.StatsMatching(t, "")
}

// StatsMatching is Stats for the stats whose names match the regular
// expression filter (Envoy's /stats?filter=; "" for all).
func (e *Envoy) StatsMatching(t testing.TB, filter string) map[string]uint64 {
	t.Helper()
	st, err := e.TryStats(filter)
	require.NoError(t, err)
	return st
}

// TryStats is StatsMatching that returns an error instead of failing the
// test, for polling (require.Eventually) conditions.
func (e *Envoy) TryStats(filter string) (map[string]uint64, error) {
	path := "/stats"
	if filter != "" {
		path += "?filter=" + url.QueryEscape(filter)
	}
	resp, err := http.Get(e.AdminURL + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	out := map[string]uint64{}
	sc := bufio.NewScanner(resp.Body)
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
	return out, sc.Err()
}

// Counter returns one stat, 0 if Envoy does not have it.
func (e *Envoy) Counter(t testing.TB, name string) uint64 {
	t.Helper()
	return e.StatsMatching(t, "^"+regexp.QuoteMeta(name)+"$")[name]
}

// Rejected returns every xDS update_rejected counter that is not zero
// (cluster_manager.cds, listener_manager.lds, each route config's rds, each
// cluster's EDS, secrets), and listener_manager.listener_create_failure
// (a listener Envoy accepted but could not create).
func (e *Envoy) Rejected(t testing.TB) map[string]uint64 {
	t.Helper()
	bad := map[string]uint64{}
	for name, v := range e.StatsMatching(t, `\.update_rejected$|^listener_manager\.listener_create_failure$`) {
		if v != 0 {
			bad[name] = v
		}
	}
	return bad
}

// RequireNoRejects fails the test unless Envoy is still running, LIVE
// (server.state 0), rejected no xDS update, and has every cluster its
// listeners refer to; the failure lists the counters and the lines Envoy
// logged about them.
func (e *Envoy) RequireNoRejects(t testing.TB) {
	t.Helper()
	require.False(t, e.Exited(), "Envoy exited during the test; logs:\n%s", e.Logs())
	bad := e.Rejected(t)
	if state := e.StatsMatching(t, `^server\.state$`)["server.state"]; state != 0 {
		bad["server.state (0 is LIVE)"] = state
	}
	for _, c := range e.DanglingRefs(t) {
		bad["a listener refers to missing cluster "+c] = 1
	}
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

// ClusterRefs returns, from /config_dump, the names of the clusters Envoy
// knows (static and dynamic, active or warming) and the cluster names its
// dynamic listeners refer to (tcp_proxy's cluster, access-log services'
// cluster_name, ...), each sorted.
func (e *Envoy) ClusterRefs(t testing.TB) (clusters, listenerRefs []string) {
	t.Helper()
	var dump struct {
		Configs []map[string]any `json:"configs"`
	}
	require.NoError(t, json.Unmarshal([]byte(e.Get(t, "/config_dump")), &dump))
	known, refs := map[string]bool{}, map[string]bool{}
	for _, c := range dump.Configs {
		for _, key := range []string{"static_clusters", "dynamic_active_clusters", "dynamic_warming_clusters"} {
			list, _ := c[key].([]any)
			for _, x := range list {
				cl, _ := x.(map[string]any)["cluster"].(map[string]any)
				if name, ok := cl["name"].(string); ok {
					known[name] = true
				}
			}
		}
		if list, ok := c["dynamic_listeners"].([]any); ok {
			collectClusterRefs(list, refs)
		}
	}
	return sortedKeys(known), sortedKeys(refs)
}

// collectClusterRefs adds the string values of "cluster" and
// "cluster_name" keys anywhere in v.
func collectClusterRefs(v any, refs map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && (k == "cluster" || k == "cluster_name") {
				refs[s] = true
			}
			collectClusterRefs(val, refs)
		}
	case []any:
		for _, val := range x {
			collectClusterRefs(val, refs)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// DanglingRefs returns the clusters Envoy's listeners refer to that it does
// not have — what took down the bank's sidecars when ALS was turned on.
// Envoy 1.40 accepts such a listener without a rejection.
func (e *Envoy) DanglingRefs(t testing.TB) []string {
	t.Helper()
	clusters, refs := e.ClusterRefs(t)
	var missing []string
	for _, r := range refs {
		if i := sort.SearchStrings(clusters, r); i == len(clusters) || clusters[i] != r {
			missing = append(missing, r)
		}
	}
	return missing
}
