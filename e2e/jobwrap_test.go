package e2e

import (
	"bytes"
	"debug/elf"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/harness"
)

// `meshd job-wrap` against a real Envoy bootstrapped by `meshd bootstrap`
// (no pilot-agent: readiness is the bootstrap's 15021-style listener, the
// agent's quit URL is a port where nothing listens, so job-wrap falls back
// to Envoy's admin /quitquitquit): the job's exit status comes out as is
// and Envoy is gone afterwards; a proxy that never gets its config fails
// the job after the timeout without running the command.

const jobWrapMesh = `
apiVersion: v1
kind: Namespace
metadata: {name: batch}
---
apiVersion: v1
kind: Service
metadata: {name: ledger, namespace: batch}
spec:
  clusterIP: 10.96.9.9
  ports:
  - {name: http, port: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ledger-1
  namespace: batch
  labels: {kubernetes.io/service-name: ledger}
addressType: IPv4
ports:
- {name: http, port: 8080}
endpoints:
- addresses: [127.0.0.1]
  conditions: {ready: true}
`

// jobEnvoy is a real Envoy sidecar of a Job pod in namespace batch.
type jobEnvoy struct {
	*harness.Envoy
	readyURL string // its readiness listener's /healthz/ready
}

// startJobEnvoy runs Envoy with the bootstrap `meshd bootstrap` prints for
// xdsAddr, admin and readiness on free ports. It returns once the admin
// answers, not once Envoy has its config.
func startJobEnvoy(t *testing.T, xdsAddr string) *jobEnvoy {
	envoyBin, err := harness.EnvoyBinary()
	require.NoError(t, err)
	admin, readiness := harness.FreePort(t), harness.FreePort(t)
	args := []string{"bootstrap", "--xds-address", xdsAddr, "--namespace", "batch", "--pod-name", "report-28473920-x7k2p",
		"--ip", "127.0.0.1", "--labels", "job-name=report-28473920", "--admin-port", strconv.Itoa(admin),
		"--stats-port", strconv.Itoa(harness.FreePort(t)), "--readiness-port", strconv.Itoa(readiness)}
	bootstrap, err := exec.Command(meshdBin, args...).Output()
	require.NoError(t, err, "meshd %v", args)
	e := harness.StartEnvoy(t, envoyBin, bootstrap, admin)
	return &jobEnvoy{Envoy: e, readyURL: "http://127.0.0.1:" + strconv.Itoa(readiness) + "/healthz/ready"}
}

// jobWrapResult is how a `meshd job-wrap` run ended.
type jobWrapResult struct {
	code    int
	stderr  string
	elapsed time.Duration
}

// jobWrapRun is a running `meshd job-wrap`.
type jobWrapRun struct {
	cmd    *exec.Cmd
	stderr bytes.Buffer // read once done is closed
	done   chan struct{}
	start  time.Time
}

// startJobWrap starts `meshd job-wrap args...`; it is killed at the end of
// the test if still running.
func startJobWrap(t *testing.T, args ...string) *jobWrapRun {
	r := &jobWrapRun{cmd: exec.Command(meshdBin, append([]string{"job-wrap"}, args...)...), done: make(chan struct{})}
	r.cmd.Stderr = &r.stderr
	r.start = time.Now()
	require.NoError(t, r.cmd.Start())
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	t.Cleanup(func() { _ = r.cmd.Process.Kill(); <-r.done })
	return r
}

// running reports whether job-wrap has not exited yet.
func (r *jobWrapRun) running() bool {
	select {
	case <-r.done:
		return false
	default:
		return true
	}
}

// wait waits (at most a minute) for job-wrap to exit and returns how.
func (r *jobWrapRun) wait(t *testing.T) jobWrapResult {
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		_ = r.cmd.Process.Kill()
		<-r.done
		require.FailNow(t, "meshd job-wrap did not end within a minute", "%v\n%s", r.cmd.Args, r.stderr.String())
	}
	res := jobWrapResult{code: r.cmd.ProcessState.ExitCode(), stderr: r.stderr.String(), elapsed: time.Since(r.start)}
	t.Logf("meshd job-wrap exited %d after %s:\n%s", res.code, res.elapsed.Round(time.Millisecond), res.stderr)
	return res
}

// runJobWrap runs `meshd job-wrap args...` (at most a minute) and returns
// its exit status and standard error.
func runJobWrap(t *testing.T, args ...string) jobWrapResult {
	return startJobWrap(t, args...).wait(t)
}

// delayedXDS returns a loopback address that forwards connections to
// target once open is called; until then nothing listens there, so an
// Envoy pointed at it keeps retrying its control plane and is not ready.
func delayedXDS(t *testing.T, target string) (addr string, open func()) {
	addr = "127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return addr, func() {
		l, err := net.Listen("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				down, err := l.Accept()
				if err != nil {
					return
				}
				up, err := net.Dial("tcp", target)
				if err != nil {
					down.Close()
					continue
				}
				mu.Lock()
				conns = append(conns, down, up)
				mu.Unlock()
				go func() { _, _ = io.Copy(up, down); up.Close() }()
				go func() { _, _ = io.Copy(down, up); down.Close() }()
			}
		}()
	}
}

// requireEnvoyGone waits (bounded) until Envoy's process has exited.
func requireEnvoyGone(t *testing.T, e *jobEnvoy, why string) {
	require.Eventually(t, e.Exited, 15*time.Second, 50*time.Millisecond, "Envoy still runs %s; logs:\n%s", why, e.Logs())
	_, err := http.Get(e.AdminURL + "/server_info")
	assert.Error(t, err, "Envoy's admin must be gone")
}

func TestJobWrapRealEnvoy(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "mesh.yaml", jobWrapMesh)
	m := startMeshd(t, dir)
	for _, want := range []int{3, 0} {
		t.Run("exit "+strconv.Itoa(want), func(t *testing.T) {
			// Envoy's control plane is out of reach until open(): Envoy
			// starts without config, as a sidecar that starts with the job.
			xdsAddr, open := delayedXDS(t, m.xdsAddr)
			e := startJobEnvoy(t, xdsAddr)
			quitURL := e.AdminURL + "/quitquitquit"
			noAgent := "http://127.0.0.1:" + strconv.Itoa(harness.FreePort(t)) + "/quitquitquit"
			marker := filepath.Join(t.TempDir(), "job-ran")
			// The command leaves a marker and checks for itself that the
			// proxy is ready (Envoy's admin says LIVE) when it runs.
			script := `touch "$1"; [ "$(curl -s ` + e.AdminURL + `/ready)" = LIVE ] || exit 99; exit ` + strconv.Itoa(want)
			if _, err := exec.LookPath("curl"); err != nil {
				script = `touch "$1"; exit ` + strconv.Itoa(want)
			}
			run := startJobWrap(t, "--ready-url", e.readyURL, "--ready-timeout", "30s", "--ready-interval", "100ms",
				"--agent-quit-url", noAgent, "--envoy-quit-url", quitURL, "--", "sh", "-c", script, "sh", marker)
			time.Sleep(1500 * time.Millisecond)
			require.True(t, run.running(), "job-wrap must wait for the proxy (Envoy has no control plane yet)")
			assert.NoFileExists(t, marker, "the command must not run before the proxy is ready")

			open()
			r := run.wait(t)
			assert.Equal(t, want, r.code, "job-wrap must exit with the command's status")
			assert.FileExists(t, marker, "the command must have run")
			assert.Regexp(t, `meshd job-wrap: proxy ready after \S+\n`, r.stderr)
			assert.Contains(t, r.stderr, "meshd job-wrap: asked the proxy to exit (POST "+quitURL+")\n")
			requireEnvoyGone(t, e, "after job-wrap asked it to quit")
		})
	}
}

func TestJobWrapProxyNeverReady(t *testing.T) {
	// Envoy's control plane address where nobody serves: Envoy never gets
	// its first CDS/LDS, so it stays PRE_INITIALIZING, its admin /ready
	// answers 503 and its readiness listener is not even bound.
	e := startJobEnvoy(t, "127.0.0.1:"+strconv.Itoa(harness.FreePort(t)))
	resp, err := http.Get(e.AdminURL + "/ready")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "Envoy must not be ready without a control plane")
	marker := filepath.Join(t.TempDir(), "job-ran")
	noAgent := "http://127.0.0.1:" + strconv.Itoa(harness.FreePort(t)) + "/quitquitquit"
	quitURL := e.AdminURL + "/quitquitquit"

	// Envoy's admin /ready: it answers, 503.
	r := runJobWrap(t, "--ready-url", e.AdminURL+"/ready", "--ready-timeout", "3s", "--no-quit", "--", "touch", marker)
	assert.Equal(t, 125, r.code)
	assert.GreaterOrEqual(t, r.elapsed, 3*time.Second)
	assert.Contains(t, r.stderr, "meshd job-wrap: proxy not ready after 3s: GET "+e.AdminURL+
		"/ready: last status: 503 Service Unavailable; command not run\n")
	assert.NoFileExists(t, marker, "the command must not run")
	assert.False(t, e.Exited(), "--no-quit must leave Envoy running")

	// The bootstrap's readiness listener, as in a pod: nothing answers.
	r = runJobWrap(t, "--ready-url", e.readyURL, "--ready-timeout", "3s",
		"--agent-quit-url", noAgent, "--envoy-quit-url", quitURL, "--", "touch", marker)
	assert.Equal(t, 125, r.code)
	assert.GreaterOrEqual(t, r.elapsed, 3*time.Second)
	assert.Contains(t, r.stderr, "meshd job-wrap: proxy not ready after 3s: GET "+e.readyURL+": last error: ")
	assert.Contains(t, r.stderr, "connection refused; command not run\n")
	assert.NoFileExists(t, marker, "the command must not run")
	// The proxy is still asked to exit, so that the Job's pod can end.
	assert.Contains(t, r.stderr, "meshd job-wrap: asked the proxy to exit (POST "+quitURL+")\n")
	requireEnvoyGone(t, e, "after job-wrap gave up on it")
}

func TestJobWrapNoProxyAtAll(t *testing.T) {
	// Nothing on any port: not ready, and both quit requests fail, which
	// is logged and does not change the exit status.
	ready := "http://127.0.0.1:" + strconv.Itoa(harness.FreePort(t)) + "/healthz/ready"
	agent := "http://127.0.0.1:" + strconv.Itoa(harness.FreePort(t)) + "/quitquitquit"
	envoy := "http://127.0.0.1:" + strconv.Itoa(harness.FreePort(t)) + "/quitquitquit"
	r := runJobWrap(t, "--ready-url", ready, "--ready-timeout", "1s", "--agent-quit-url", agent,
		"--envoy-quit-url", envoy, "--", "true")
	assert.Equal(t, 125, r.code)
	assert.Contains(t, r.stderr, "meshd job-wrap: could not ask the proxy to exit (the pod may keep running): POST "+agent+": ")

	r = runJobWrap(t, "--no-wait", "--agent-quit-url", agent, "--envoy-quit-url", envoy, "--", "sh", "-c", "exit 42")
	assert.Equal(t, 42, r.code)
	assert.Contains(t, r.stderr, "POST "+envoy+": ")
	r = runJobWrap(t, "--no-wait", "--no-quit", "--", "meshd-no-such-command")
	assert.Equal(t, 127, r.code)
	r = runJobWrap(t, "--no-wait", "--no-quit", "--", os.TempDir())
	assert.Equal(t, 126, r.code)
}

// job-wrap with Istio's real pilot-agent as the sidecar: readiness is the
// agent's /healthz/ready, and its /quitquitquit stops the agent and Envoy
// (the Envoy admin URL given is one where nothing listens, so the agent's
// is what worked). Needs `make envoy pilot-agent`.
func TestJobWrapPilotAgent(t *testing.T) {
	caDir, root := pluginCA(t)
	tokens := harness.WriteStaticTokens(t, "shop-token shop frontend")
	_, addr := startSecureMeshd(t, caDir, tokens)
	for _, want := range []int{3, 0} {
		t.Run("exit "+strconv.Itoa(want), func(t *testing.T) {
			a := harness.StartPilotAgent(t, harness.PilotAgentOptions{DiscoveryAddress: addr, RootCert: root,
				Token: "shop-token", Namespace: "shop", ServiceAccount: "frontend",
				Labels: map[string]string{"app": "frontend", "version": "v1"}})
			noEnvoy := "http://127.0.0.1:" + strconv.Itoa(harness.FreePort(t)) + "/quitquitquit"
			r := runJobWrap(t, "--ready-url", a.StatusURL+"/healthz/ready", "--ready-timeout", "60s",
				"--agent-quit-url", a.StatusURL+"/quitquitquit", "--envoy-quit-url", noEnvoy,
				"--", "sh", "-c", `[ "$(curl -s `+a.AdminURL+`/ready)" = LIVE ] || exit 99; exit `+strconv.Itoa(want))
			assert.Equal(t, want, r.code)
			assert.Contains(t, r.stderr, "meshd job-wrap: asked the proxy to exit (POST "+a.StatusURL+"/quitquitquit)\n")
			require.Eventually(t, a.Exited, 20*time.Second, 50*time.Millisecond, "pilot-agent still runs; logs:\n%s", a.Logs())
			_, err := http.Get(a.AdminURL + "/server_info")
			assert.Error(t, err, "Envoy must be gone with its agent")
		})
	}
}

// TestMeshdBinaryIsStatic: the meshd the injector copies into Job pods
// (`job-wrap --install`) must run in images without glibc (alpine,
// distroless-static): the binary `make build` produces has no ELF
// interpreter (CGO_ENABLED=0).
func TestMeshdBinaryIsStatic(t *testing.T) {
	f, err := elf.Open(meshdBin)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "%s is dynamically linked (build it with CGO_ENABLED=0)", meshdBin)
	}
}
