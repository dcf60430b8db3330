package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// meshdProc is the meshd process under test.
type meshdProc struct {
	cmd               *exec.Cmd
	xdsAddr, adminURL string
	logPath           string
	done              chan struct{}
	waitErr           error
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startMeshd runs `bin serve --kubeconfig ...` on free loopback ports,
// logging to dir/meshd.log, with env added to the environment and extra
// arguments last (the secure port is off unless extra gives
// --secure-xds-address: a later flag overrides an earlier one).
func startMeshd(bin, kubeconfig, dir string, env []string, extra ...string) (*meshdProc, error) {
	xp, err := freePort()
	if err != nil {
		return nil, err
	}
	ap, err := freePort()
	if err != nil {
		return nil, err
	}
	m := &meshdProc{xdsAddr: fmt.Sprintf("127.0.0.1:%d", xp), adminURL: fmt.Sprintf("http://127.0.0.1:%d", ap),
		logPath: filepath.Join(dir, "meshd.log"), done: make(chan struct{})}
	logf, err := os.Create(m.logPath)
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--secure-xds-address", "off", "--injector-address", "off", "--kubeconfig", kubeconfig, "--istio-namespace", "istio-system",
		"--xds-address", m.xdsAddr, "--admin-address", fmt.Sprintf("127.0.0.1:%d", ap), "--log-level", "warn"}
	m.cmd = exec.Command(bin, append(args, extra...)...)
	m.cmd.Env = append(os.Environ(), env...)
	m.cmd.Stdout, m.cmd.Stderr = logf, logf
	if err := m.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() { m.waitErr = m.cmd.Wait(); logf.Close(); close(m.done) }()
	return m, nil
}

// waitReady waits for /ready and for the registry to hold at least n
// services.
func (m *meshdProc) waitReady(ctx context.Context, n int) error {
	for {
		select {
		case <-m.done:
			return fmt.Errorf("meshd exited: %v; log %s:\n%s", m.waitErr, m.logPath, tail(m.logPath, 2048))
		case <-ctx.Done():
			return fmt.Errorf("meshd not ready with %d services: %w; log %s:\n%s", n, ctx.Err(), m.logPath, tail(m.logPath, 2048))
		case <-time.After(100 * time.Millisecond):
		}
		if code, _ := m.get("/ready"); code != http.StatusOK {
			continue
		}
		_, body := m.get("/debug/registryz")
		if strings.Count(string(body), `"hostname"`) >= n {
			return nil
		}
	}
}

func (m *meshdProc) get(path string) (int, []byte) {
	resp, err := http.Get(m.adminURL + path)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// pushStatus fetches /debug/push_status (the zero value if that fails).
func (m *meshdProc) pushStatus() PushStatus {
	var ps PushStatus
	_, body := m.get("/debug/push_status")
	_ = json.Unmarshal(body, &ps)
	return ps
}

// allocStats returns the bytes meshd has allocated so far and its
// collections so far, from the Go collector's metrics on /metrics
// (ok false if they could not be read).
func (m *meshdProc) allocStats() (allocated float64, gcs float64, ok bool) {
	code, body := m.get("/metrics")
	if code != http.StatusOK {
		return 0, 0, false
	}
	found := 0
	for _, line := range strings.Split(string(body), "\n") {
		name, v, cut := strings.Cut(line, " ")
		if !cut {
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			continue
		}
		switch name {
		case "go_memstats_alloc_bytes_total":
			allocated = f
			found++
		case "go_gc_duration_seconds_count":
			gcs = f
			found++
		}
	}
	return allocated, gcs, found == 2
}

// save writes an admin path (a pprof profile) to file.
func (m *meshdProc) save(path, file string) error {
	code, body := m.get(path)
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: HTTP %d: %.200s", path, code, body)
	}
	return os.WriteFile(file, body, 0o644)
}

// memStats returns the Go runtime's view of meshd's memory (live heap,
// heap held, stacks, everything obtained from the OS), read from the
// runtime.MemStats lines of /debug/pprof/heap?debug=1 after a forced
// collection; "" if that fails.
func (m *meshdProc) memStats() string {
	code, body := m.get("/debug/pprof/heap?gc=1&debug=1")
	if code != http.StatusOK {
		return ""
	}
	want := map[string]string{"HeapAlloc": "live heap", "HeapInuse": "heap in use", "HeapIdle": "heap idle",
		"HeapReleased": "returned to the OS", "Stack": "goroutine stacks", "Sys": "from the OS"}
	var parts []string
	for _, line := range strings.Split(string(body), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "# "), " = ")
		v, _, _ = strings.Cut(v, " / ") // "Stack = in use / obtained"
		if label, wanted := want[k]; ok && wanted {
			if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
				parts = append(parts, fmt.Sprintf("%s %d MB", label, n>>20))
			}
		}
	}
	return strings.Join(parts, ", ")
}

// stop sends SIGTERM and waits (then kills) the process.
func (m *meshdProc) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(10 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// usage is a process's CPU time and memory at one moment.
type usage struct {
	At       time.Time
	CPU      time.Duration // user + system
	RSS, HWM int64         // bytes
}

// clockTick is USER_HZ, the unit of utime and stime (100 on Linux).
const clockTick = 100

// readUsage reads /proc/<pid>/stat and /proc/<pid>/status.
func readUsage(pid int) (usage, error) {
	u := usage{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	// Fields after the command name (which may hold spaces) in ")".
	f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(f) < 13 {
		return u, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	u.CPU = time.Duration(ut+st) * time.Second / clockTick
	file, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			u.RSS = kb << 10
		case "VmHWM":
			u.HWM = kb << 10
		}
	}
	return u, sc.Err()
}

// sampler polls a process's usage and keeps the peak RSS since the last
// reset (VmHWM only ever grows, so per-phase peaks need sampling).
type sampler struct {
	pid  int
	mu   sync.Mutex
	peak int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func newSampler(pid int, every time.Duration) *sampler {
	s := &sampler{pid: pid, stop: make(chan struct{})}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
				if u, err := readUsage(pid); err == nil {
					s.mu.Lock()
					s.peak = max(s.peak, u.RSS)
					s.mu.Unlock()
				}
			}
		}
	}()
	return s
}

// takePeak returns the peak RSS since the last call and resets it.
func (s *sampler) takePeak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, err := readUsage(s.pid); err == nil {
		s.peak = max(s.peak, u.RSS)
	}
	p := s.peak
	s.peak = 0
	return p
}

func (s *sampler) close() {
	close(s.stop)
	s.wg.Wait()
}
