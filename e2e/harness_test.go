package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/meshd/meshd/e2e/harness"
)

// The file-provider suite: the real meshd binary on a temporary config
// directory, real gRPC backends on loopback and grpc-go's xDS client, all
// from package harness (shared with the Kubernetes suite in e2e/kube).

var meshdBin string

func TestMain(m *testing.M) {
	bin, cleanup, err := harness.Binary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	meshdBin = bin
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// meshd is a running meshd serving a config directory.
type meshd struct {
	*harness.Meshd
	xdsAddr, adminURL string
}

// startMeshd runs the real binary on dir and waits for /ready.
func startMeshd(t *testing.T, dir string, env ...string) *meshd {
	m := harness.StartMeshd(t, meshdBin, 20*time.Second, []string{"--config-dir", dir, "--poll-interval", "100ms"}, env...)
	return &meshd{Meshd: m, xdsAddr: m.XDSAddr, adminURL: m.AdminURL}
}

func (m *meshd) getJSON(t *testing.T, path string, v any) { m.GetJSON(t, path, v) }

// acked returns the version of typ the proxy last acknowledged, "" if none
// or if its last response is not acknowledged yet.
func (m *meshd) acked(t *testing.T, proxy, typ string) string { return m.Acked(t, proxy, typ) }

// waitNewAck waits until proxy has acknowledged a version of typ other than
// old, and returns it and how long it took.
func (m *meshd) waitNewAck(t *testing.T, proxy, typ, old string) (string, time.Duration) {
	return m.WaitNewAck(t, proxy, typ, old, 15*time.Second)
}

// backend is a real gRPC server on loopback that names itself in a
// response header.
type backend struct {
	name string
	port int
}

func startBackend(t *testing.T, name string) *backend {
	b := harness.StartBackend(t, name, "127.0.0.1", 0)
	return &backend{name: name, port: b.Port}
}

// call makes one RPC and returns the backend that served it.
func call(ctx context.Context, conn *grpc.ClientConn) (string, error) { return harness.Call(ctx, conn) }

// spread makes n RPCs and counts them per backend; any error fails the test.
func spread(t *testing.T, conn *grpc.ClientConn, n int) map[string]int {
	return harness.Spread(t, conn, n)
}

// share is the fraction of calls that reached the named backends.
func share(counts map[string]int, names ...string) float64 { return harness.Share(counts, names...) }

// dialXDS connects grpc-go's xDS client to meshd as a proxyless client in demo.
func dialXDS(t *testing.T, m *meshd, target string) *grpc.ClientConn {
	return harness.DialXDS(t, m.xdsAddr, clientNode, "demo", target)
}

// writeFile replaces dir/name atomically, as a config management tool would.
func writeFile(t *testing.T, dir, name, content string) {
	tmp := filepath.Join(dir, "."+name+".tmp")
	require.NoError(t, os.WriteFile(tmp, []byte(content), 0o644))
	require.NoError(t, os.Rename(tmp, filepath.Join(dir, name)))
}
