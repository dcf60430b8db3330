package jobwrap

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the tests run this binary as `meshd job-wrap`, to send it
// real signals.
func TestMain(m *testing.M) {
	if os.Getenv("JOBWRAP_TEST_AS_MAIN") == "1" {
		os.Exit(Main(os.Args[1:], os.Getenv, Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr}))
	}
	os.Exit(m.Run())
}

// fakeProxy is a readiness endpoint ready after notReady 503s, and the
// agent's and Envoy's quit endpoints answering agentStatus and 200.
type fakeProxy struct {
	opts               *Options
	agentURL, envoyURL string
}

func newFakeProxy(t *testing.T, notReady int32, agentStatus int) (*fakeProxy, func() (ready, agent, envoy int32)) {
	ready, readyCalls := readyAfter(t, notReady)
	agent, agentPosts := quitEndpoint(t, agentStatus)
	envoy, envoyPosts := quitEndpoint(t, http.StatusOK)
	o := defaults()
	o.ReadyURL, o.ReadyTimeout, o.ReadyInterval = ready.URL+"/healthz/ready", 10*time.Second, 10*time.Millisecond
	o.AgentQuitURL, o.EnvoyQuitURL, o.QuitTimeout = agent, envoy, time.Second
	return &fakeProxy{opts: o, agentURL: agent, envoyURL: envoy}, func() (int32, int32, int32) {
		return readyCalls.Load(), agentPosts.Load(), envoyPosts.Load()
	}
}

func run(o *Options, argv ...string) (int, string) {
	var errOut bytes.Buffer
	o.Command = argv
	code := Run(context.Background(), o, Stdio{Out: &bytes.Buffer{}, Err: &errOut}, nil)
	return code, errOut.String()
}

func TestRunExitCodes(t *testing.T) {
	for _, want := range []int{0, 3} {
		p, counts := newFakeProxy(t, 2, http.StatusOK)
		code, log := run(p.opts, "sh", "-c", "exit "+strconv.Itoa(want))
		assert.Equal(t, want, code)
		ready, agent, envoy := counts()
		assert.Equal(t, [3]int32{3, 1, 0}, [3]int32{ready, agent, envoy}, "3 polls, agent asked to quit")
		assert.Regexp(t, `^meshd job-wrap: proxy ready after \S+\nmeshd job-wrap: asked the proxy to exit \(POST `+p.agentURL+`\)\n$`, log)
	}
}

func TestRunCommandRunsOnlyOnceReady(t *testing.T) {
	p, counts := newFakeProxy(t, 5, http.StatusOK)
	// The command sees readiness already reached: 6 polls so far.
	ready := func() int32 { r, _, _ := counts(); return r }
	code, _ := run(p.opts, "sh", "-c", "exit 0")
	assert.Equal(t, 0, code)
	assert.Equal(t, int32(6), ready())
}

func TestRunFallsBackToEnvoyQuit(t *testing.T) {
	p, counts := newFakeProxy(t, 0, http.StatusOK)
	p.opts.AgentQuitURL = refusedURL(t, "/quitquitquit")
	code, log := run(p.opts, "sh", "-c", "exit 4")
	assert.Equal(t, 4, code)
	_, agent, envoy := counts()
	assert.Equal(t, int32(0), agent)
	assert.Equal(t, int32(1), envoy)
	assert.Contains(t, log, "asked the proxy to exit (POST "+p.envoyURL+")")
}

func TestRunQuitFailureKeepsExitCode(t *testing.T) {
	p, _ := newFakeProxy(t, 0, http.StatusInternalServerError)
	p.opts.EnvoyQuitURL = refusedURL(t, "/quitquitquit")
	code, log := run(p.opts, "sh", "-c", "exit 5")
	assert.Equal(t, 5, code)
	assert.Contains(t, log, "meshd job-wrap: could not ask the proxy to exit (the pod may keep running): POST "+
		p.agentURL+": 500 Internal Server Error; POST "+p.opts.EnvoyQuitURL+": ")
	assert.Contains(t, log, "connection refused")
}

func TestRunNotReady(t *testing.T) {
	p, counts := newFakeProxy(t, 1<<30, http.StatusOK)
	p.opts.ReadyTimeout = time.Second
	marker := filepath.Join(t.TempDir(), "ran")
	code, log := run(p.opts, "touch", marker)
	assert.Equal(t, ExitNotReady, code)
	assert.NoFileExists(t, marker, "the command must not run")
	assert.Contains(t, log, "meshd job-wrap: proxy not ready after 1s: GET "+p.opts.ReadyURL+
		": last status: 503 Service Unavailable; command not run\n")
	_, agent, _ := counts()
	assert.Equal(t, int32(1), agent, "the proxy is asked to exit, so that the pod ends")
}

func TestRunCannotStart(t *testing.T) {
	p, counts := newFakeProxy(t, 0, http.StatusOK)
	code, log := run(p.opts, "meshd-no-such-command", "x")
	assert.Equal(t, ExitNotFound, code)
	assert.Contains(t, log, `meshd job-wrap: exec: "meshd-no-such-command": executable file not found in $PATH (exit status 127)`)
	_, agent, _ := counts()
	assert.Equal(t, int32(1), agent)
}

func TestRunNoWaitNoQuit(t *testing.T) {
	p, counts := newFakeProxy(t, 1<<30, http.StatusOK)
	p.opts.NoWait, p.opts.NoQuit = true, true
	code, log := run(p.opts, "sh", "-c", "exit 6")
	assert.Equal(t, 6, code)
	assert.Empty(t, log)
	ready, agent, envoy := counts()
	assert.Equal(t, [3]int32{0, 0, 0}, [3]int32{ready, agent, envoy})
}

// startMain runs this test binary as `meshd job-wrap args...` and returns
// it once the command has printed its first line.
func startMain(t *testing.T, args ...string) (*exec.Cmd, *syncBuffer) {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "JOBWRAP_TEST_AS_MAIN=1")
	errOut := &syncBuffer{}
	cmd.Stderr = errOut
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(t, err, "stderr: %s", errOut.String())
	require.Equal(t, "started\n", line)
	return cmd, errOut
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// exitCode waits for cmd, at most 10 s.
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("job-wrap did not exit")
	}
	return cmd.ProcessState.ExitCode()
}

func TestMainForwardsSIGTERM(t *testing.T) {
	p, counts := newFakeProxy(t, 0, http.StatusOK)
	marker := filepath.Join(t.TempDir(), "got-term")
	cmd, _ := startMain(t, "--ready-url", p.opts.ReadyURL, "--agent-quit-url", p.agentURL, "--",
		"sh", "-c", `trap 'echo TERM > "$1"; exit 7' TERM; echo started; i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; exit 99`, "sh", marker)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	assert.Equal(t, 7, exitCode(t, cmd), "the child's own exit status after its trap")
	b, err := os.ReadFile(marker)
	require.NoError(t, err, "the child never saw SIGTERM")
	assert.Equal(t, "TERM\n", string(b))
	_, agent, _ := counts()
	assert.Equal(t, int32(1), agent, "the proxy is asked to exit after a signal too")
}

func TestMainSignalDeathIs128PlusN(t *testing.T) {
	for sig, want := range map[syscall.Signal]int{syscall.SIGTERM: 143, syscall.SIGINT: 130, syscall.SIGHUP: 129} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, errOut := startMain(t, "--no-wait", "--no-quit", "--", "sh", "-c", "echo started; exec sleep 20")
			require.NoError(t, cmd.Process.Signal(sig))
			assert.Equal(t, want, exitCode(t, cmd), "stderr: %s", errOut.String())
		})
	}
}

func TestMainUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, ExitUsage, Main(nil, env(nil), Stdio{Out: &out, Err: &errOut}))
	assert.Contains(t, errOut.String(), "meshd job-wrap: no command")
	errOut.Reset()
	assert.Equal(t, 0, Main([]string{"--help"}, env(nil), Stdio{Out: &out, Err: &errOut}))
	assert.Contains(t, out.String(), "usage: meshd job-wrap")
	assert.Empty(t, errOut.String())
}
