package e2e

import (
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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
)

var meshdBin string

func TestMain(m *testing.M) {
	meshdBin = os.Getenv("MESHD_BIN")
	if meshdBin == "" {
		dir, err := os.MkdirTemp("", "meshd-e2e")
		if err != nil {
			panic(err)
		}
		meshdBin = filepath.Join(dir, "meshd")
		cmd := exec.Command("go", "build", "-o", meshdBin, "../cmd/meshd")
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building meshd:", err)
			os.Exit(1)
		}
		defer os.RemoveAll(dir)
	}
	os.Exit(m.Run())
}

// freePort returns a loopback port nobody listens on right now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// meshd is a running meshd process.
type meshd struct {
	xdsAddr, adminURL string
	mu                sync.Mutex
	logs              bytes.Buffer
}

func (m *meshd) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logs.Write(p)
}

// Logs returns everything meshd logged so far.
func (m *meshd) Logs() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.logs.String()
}

// startMeshd runs the real binary on dir and waits for /ready.
func startMeshd(t *testing.T, dir string, env ...string) *meshd {
	xdsPort, adminPort := freePort(t), freePort(t)
	m := &meshd{xdsAddr: "127.0.0.1:" + strconv.Itoa(xdsPort), adminURL: "http://127.0.0.1:" + strconv.Itoa(adminPort)}
	cmd := exec.Command(meshdBin, "serve", "--config-dir", dir, "--xds-address", m.xdsAddr,
		"--admin-address", "127.0.0.1:"+strconv.Itoa(adminPort), "--poll-interval", "100ms")
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
		if t.Failed() {
			t.Logf("meshd logs:\n%s", m.Logs())
		}
	})
	require.Eventually(t, func() bool {
		resp, err := http.Get(m.adminURL + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 20*time.Second, 50*time.Millisecond, "meshd never became ready; logs:\n%s", m.Logs())
	return m
}

// getJSON fetches an admin path into v.
func (m *meshd) getJSON(t *testing.T, path string, v any) {
	resp, err := http.Get(m.adminURL + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	require.NoError(t, json.Unmarshal(b, v), string(b))
}

type typeStatus struct {
	SentVersion  string `json:"sentVersion"`
	SentNonce    string `json:"sentNonce"`
	AckedVersion string `json:"ackedVersion"`
	AckedNonce   string `json:"ackedNonce"`
}

type syncEntry struct {
	Proxy string                `json:"proxy"`
	Types map[string]typeStatus `json:"types"`
}

// acked returns the version of typ the proxy last acknowledged, "" if none or
// if the last response it was sent is not acknowledged yet.
func (m *meshd) acked(t *testing.T, proxy, typ string) string {
	var entries []syncEntry
	m.getJSON(t, "/debug/syncz", &entries)
	for _, e := range entries {
		if e.Proxy == proxy {
			ts := e.Types[typ]
			if ts.SentNonce != "" && ts.SentNonce == ts.AckedNonce {
				return ts.AckedVersion
			}
		}
	}
	return ""
}

// waitNewAck waits until proxy has acknowledged a version of typ other than
// old, and returns it and how long it took.
func (m *meshd) waitNewAck(t *testing.T, proxy, typ, old string) (string, time.Duration) {
	start := time.Now()
	var v string
	require.Eventually(t, func() bool {
		v = m.acked(t, proxy, typ)
		return v != "" && v != old
	}, 15*time.Second, 20*time.Millisecond, "%s never ACKed a new %s version", proxy, typ)
	return v, time.Since(start)
}

// backend is a real gRPC server that names itself in a response header.
type backend struct {
	name string
	port int
	srv  *grpc.Server
}

type namedHealth struct {
	healthgrpc.UnimplementedHealthServer
	name string
}

func (h namedHealth) Check(ctx context.Context, _ *healthgrpc.HealthCheckRequest) (*healthgrpc.HealthCheckResponse, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs("backend", h.name))
	return &healthgrpc.HealthCheckResponse{Status: healthgrpc.HealthCheckResponse_SERVING}, nil
}

func startBackend(t *testing.T, name string) *backend {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	b := &backend{name: name, port: lis.Addr().(*net.TCPAddr).Port, srv: grpc.NewServer()}
	healthgrpc.RegisterHealthServer(b.srv, namedHealth{name: name})
	go func() { _ = b.srv.Serve(lis) }()
	t.Cleanup(b.srv.Stop)
	return b
}

// call makes one RPC and returns the backend that served it.
func call(ctx context.Context, conn *grpc.ClientConn) (string, error) {
	var hdr metadata.MD
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := healthgrpc.NewHealthClient(conn).Check(ctx, &healthgrpc.HealthCheckRequest{}, grpc.Header(&hdr))
	if err != nil {
		return "", err
	}
	if v := hdr.Get("backend"); len(v) == 1 {
		return v[0], nil
	}
	return "", fmt.Errorf("response without backend header")
}

// spread makes n RPCs and counts them per backend; any error fails the test.
func spread(t *testing.T, conn *grpc.ClientConn, n int) map[string]int {
	out := map[string]int{}
	for i := 0; i < n; i++ {
		b, err := call(context.Background(), conn)
		require.NoError(t, err, "RPC %d failed", i)
		out[b]++
	}
	return out
}

func writeFile(t *testing.T, dir, name, content string) {
	tmp := filepath.Join(dir, "."+name+".tmp")
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
}
