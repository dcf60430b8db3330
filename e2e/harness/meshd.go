package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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

// Binary returns the meshd binary to test: $MESHD_BIN, or one built from the
// repository into a temporary directory (removed by the returned cleanup).
func Binary() (path string, cleanup func(), err error) {
	return BinaryTagged("MESHD_BIN", "")
}

// BinaryTagged is Binary for a build with Go build tags (e.g. meshd_faults,
// the test build that can inject faults): $envVar if set, else a fresh
// build.
func BinaryTagged(envVar, tags string) (path string, cleanup func(), err error) {
	if b := os.Getenv(envVar); b != "" {
		return b, func() {}, nil
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "meshd-e2e")
	if err != nil {
		return "", nil, err
	}
	path = filepath.Join(dir, "meshd")
	cmd := exec.Command("go", "build", "-tags", tags, "-o", path, "./cmd/meshd")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("building meshd (tags %q): %w", tags, err)
	}
	return path, func() { os.RemoveAll(dir) }, nil
}

// givenPorts are the ports FreePort has returned in this process.
var givenPorts struct {
	sync.Mutex
	m map[int]bool
}

// FreePort returns a TCP port free on every IPv4 address of this network
// namespace right now (checked on 0.0.0.0, so loopback is covered too) that
// FreePort has not returned before in this process: parallel tests never
// get the same port for an admin interface, a listener or a server, even
// after the first has closed it. The port is below the kernel's ephemeral
// range (net.ipv4.ip_local_port_range), so no outgoing connection (an
// Envoy dialling its control plane, a client) can take it as its source
// port before the process it is meant for binds it.
func FreePort(t testing.TB) int {
	t.Helper()
	givenPorts.Lock()
	defer givenPorts.Unlock()
	if givenPorts.m == nil {
		givenPorts.m = map[int]bool{}
	}
	low := ephemeralLow()
	for range 200 {
		p := 10000 + rand.IntN(low-10000)
		if givenPorts.m[p] {
			continue
		}
		l, err := net.Listen("tcp", "0.0.0.0:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		require.NoError(t, l.Close())
		givenPorts.m[p] = true
		return p
	}
	t.Fatalf("FreePort: no free port below the ephemeral range (%d) after 200 tries", low)
	return 0
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768
// when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	low, err := strconv.Atoi(f[0])
	if err != nil || low <= 11000 {
		return 32768
	}
	return low
}

// Meshd is a running meshd process.
type Meshd struct {
	XDSAddr, AdminURL string
	logBuffer         // what meshd logged (Logs)
}

// StartMeshd runs `bin serve` with args plus free ADS and admin ports, and
// waits up to ready for /ready. The secure port is off unless args set
// --secure-xds-address (see SecurePort), the injection webhook unless they
// set --injector-address (tests run many meshd at once). At cleanup it sends SIGTERM and checks that
// meshd exits cleanly; on failure the test log gets meshd's logs.
func StartMeshd(t testing.TB, bin string, ready time.Duration, args []string, env ...string) *Meshd {
	t.Helper()
	return StartMeshdOn(t, "127.0.0.1", bin, ready, args, env...)
}

// StartMeshdOn is StartMeshd with ADS listening on xdsHost (e.g. 0.0.0.0,
// for proxies in another network namespace of the test); XDSAddr is still
// its loopback address.
func StartMeshdOn(t testing.TB, xdsHost, bin string, ready time.Duration, args []string, env ...string) *Meshd {
	t.Helper()
	xdsPort, adminPort := FreePort(t), FreePort(t)
	m := &Meshd{XDSAddr: "127.0.0.1:" + strconv.Itoa(xdsPort), AdminURL: "http://127.0.0.1:" + strconv.Itoa(adminPort)}
	args = append([]string{"serve", "--xds-address", net.JoinHostPort(xdsHost, strconv.Itoa(xdsPort)),
		"--admin-address", "127.0.0.1:" + strconv.Itoa(adminPort), "--secure-xds-address", "off",
		"--injector-address", "off"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = m, m
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
			assert.NoError(t, waitErr, "meshd must exit cleanly on SIGTERM")
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Error("meshd did not stop within 10s of SIGTERM")
		}
		if t.Failed() || os.Getenv("MESHD_E2E_LOGS") != "" {
			t.Logf("meshd logs:\n%s", m.Logs())
		}
	})
	require.Eventually(t, func() bool {
		select {
		case <-done:
			return false
		default:
		}
		return m.Status("/ready") == http.StatusOK
	}, ready, 50*time.Millisecond, "meshd never became ready; logs:\n%s", m.Logs())
	return m
}

// Status returns the HTTP status of an admin GET, 0 if it failed.
func (m *Meshd) Status(path string) int {
	resp, err := http.Get(m.AdminURL + path)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// GetJSON fetches an admin path into v.
func (m *Meshd) GetJSON(t testing.TB, path string, v any) {
	t.Helper()
	resp, err := http.Get(m.AdminURL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.NoError(t, json.Unmarshal(b, v), string(b))
}
