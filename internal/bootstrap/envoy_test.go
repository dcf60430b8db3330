package bootstrap

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// envoyBin returns the real Envoy: $MESHD_ENVOY_BIN, else bin/envoy at the
// repository root (the directory of go.mod above the test). A missing binary
// fails the test: these tests are the proof that Envoy accepts the output.
func envoyBin(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MESHD_ENVOY_BIN"); p != "" {
		_, err := os.Stat(p)
		require.NoError(t, err, "MESHD_ENVOY_BIN=%s: no Envoy there", p)
		return p
	}
	dir, err := os.Getwd()
	require.NoError(t, err)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		require.NotEqual(t, dir, parent, "no go.mod above the test directory")
		dir = parent
	}
	p := filepath.Join(dir, "bin", "envoy")
	_, err = os.Stat(p)
	require.NoError(t, err, "Envoy is needed at %s: run `make envoy` (or set MESHD_ENVOY_BIN)", p)
	return p
}

// TestEnvoyAcceptsBootstrap loads each flavour of bootstrap into the real
// Envoy in validate mode: the config is parsed, every static cluster and
// listener is instantiated, nothing binds or connects.
func TestEnvoyAcceptsBootstrap(t *testing.T) {
	envoy := envoyBin(t)
	common := []string{"--namespace", "shop", "--pod-name", "frontend-7d4f8c9b6-x2x9z",
		"--labels", "app=frontend,version=v1,pod-template-hash=7d4f8c9b6", "--locality", "eu-west1/b/c"}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"sidecar-delta", []string{"--type", "sidecar", "--xds-api", "delta"}},
		{"sidecar-sotw", []string{"--type", "sidecar", "--xds-api", "sotw"}},
		{"router-delta", []string{"--type", "router", "--xds-api", "delta"}},
		{"router-sotw", []string{"--type", "router", "--xds-api", "sotw"}},
		{"sidecar-dns-json", []string{"--xds-address", "meshd.istio-system.svc:15010", "--format", "json"}},
		{"router-ipv6-json", []string{"--type", "router", "--ip", "fd00::5,10.0.0.5", "--xds-address", "[::1]:15010", "--format", "json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := mustParse(t, append(append([]string{}, common...), tc.args...)...)
			out, err := Generate(o)
			require.NoError(t, err)
			file := filepath.Join(t.TempDir(), "bootstrap."+o.Format)
			require.NoError(t, os.WriteFile(file, out, 0o644))

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, envoy, "--mode", "validate", "-c", file, "--log-level", "warn")
			log, err := cmd.CombinedOutput()
			require.NoError(t, err, "envoy --mode validate rejected %s:\n%s\n--- bootstrap:\n%s", tc.name, log, out)
			require.Contains(t, string(log), "OK", "envoy did not report the configuration OK:\n%s", log)
		})
	}
}
