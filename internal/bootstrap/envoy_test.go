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
		{"sidecar-dns-yaml", []string{"--xds-address", "meshd.istio-system.svc:15010", "--format", "yaml"}},
		{"router-ipv6-json", []string{"--type", "router", "--ip", "fd00::5,10.0.0.5", "--xds-address", "[::1]:15010", "--format", "json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := mustParse(t, append(append([]string{}, common...), tc.args...)...)
			out, err := Generate(o)
			require.NoError(t, err)
			file := filepath.Join(t.TempDir(), "bootstrap."+o.Format)
			require.NoError(t, os.WriteFile(file, out, 0o644))
			requireValid(t, envoy, file, out)
		})
	}
}

// TestEnvoyAcceptsTLSBootstrap loads --tls bootstraps into the real Envoy:
// the TLS transport socket is instantiated, so Envoy reads the root
// certificate and checks the SAN matcher. The control removes the root
// certificate after generating: Envoy must then refuse the bootstrap, which
// shows validate mode really loads the file.
func TestEnvoyAcceptsTLSBootstrap(t *testing.T) {
	envoy := envoyBin(t)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"sidecar-ip-json", nil},
		{"sidecar-dns-yaml", []string{"--xds-address", "istiod.istio-system.svc:15012", "--format", "yaml"}},
		{"router-ipv6-sotw", []string{"--type", "router", "--ip", "fd00::5", "--xds-address", "[::1]:15012", "--xds-api", "sotw",
			"--tls-server-name", "istiod.mesh.svc"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"--namespace", "shop", "--pod-name", "frontend-1"}, tlsArgs(t)...)
			o := mustParse(t, append(args, tc.args...)...)
			out, err := Generate(o)
			require.NoError(t, err)
			file := filepath.Join(t.TempDir(), "bootstrap."+o.Format)
			require.NoError(t, os.WriteFile(file, out, 0o600))
			requireValid(t, envoy, file, out)
		})
	}
	t.Run("root cert gone", func(t *testing.T) {
		t.Parallel()
		o := mustParse(t, append([]string{"--namespace", "shop", "--pod-name", "frontend-1"}, tlsArgs(t)...)...)
		out, err := Generate(o)
		require.NoError(t, err)
		require.NoError(t, os.Remove(o.RootCert))
		file := filepath.Join(t.TempDir(), "bootstrap.json")
		require.NoError(t, os.WriteFile(file, out, 0o600))
		log, err := validate(envoy, file)
		require.Error(t, err, "Envoy accepted a missing trusted_ca file: validate mode does not load it:\n%s", log)
		require.Contains(t, string(log), o.RootCert)
	})
}

// TestEnvoyAcceptsDefaultOutputWithoutExtension is `envoy -c <(meshd
// bootstrap)`: Envoy picks its parser by the file's extension, and a path
// such as /dev/fd/63 has none, so it is read as JSON. The default output
// must pass there, in a file and in a pipe; YAML is the control, which
// Envoy refuses ("Unable to parse JSON as proto").
func TestEnvoyAcceptsDefaultOutputWithoutExtension(t *testing.T) {
	envoy := envoyBin(t)
	out, err := Generate(mustParse(t, "--namespace", "shop", "--pod-name", "frontend-1"))
	require.NoError(t, err)

	t.Run("file", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "bootstrap")
		require.NoError(t, os.WriteFile(file, out, 0o644))
		requireValid(t, envoy, file, out)
	})
	t.Run("pipe", func(t *testing.T) {
		t.Parallel()
		r, w, err := os.Pipe()
		require.NoError(t, err)
		defer r.Close()
		go func() { // the pipe holds 64 KiB; the bootstrap is a few
			defer w.Close()
			_, _ = w.Write(out)
		}()
		requireValid(t, envoy, "/dev/fd/3", out, r) // ExtraFiles[0] is fd 3
	})
	t.Run("yaml fails", func(t *testing.T) {
		t.Parallel()
		o := mustParse(t, "--namespace", "shop", "--pod-name", "frontend-1", "--format", "yaml")
		y, err := Generate(o)
		require.NoError(t, err)
		file := filepath.Join(t.TempDir(), "bootstrap")
		require.NoError(t, os.WriteFile(file, y, 0o644))
		log, err := validate(envoy, file)
		require.Error(t, err, "Envoy read YAML from a file without extension; JSON need not be the default any more:\n%s", log)
		require.Contains(t, string(log), "Unable to parse JSON")
	})
}

// requireValid runs `envoy --mode validate -c file` (with extra files from
// fd 3 on) and requires it to report the configuration OK.
func requireValid(t *testing.T, envoy, file string, out []byte, extra ...*os.File) {
	t.Helper()
	log, err := validate(envoy, file, extra...)
	require.NoError(t, err, "envoy --mode validate rejected %s:\n%s\n--- bootstrap:\n%s", file, log, out)
	require.Contains(t, string(log), "OK", "envoy did not report the configuration OK:\n%s", log)
}

// validate runs `envoy --mode validate -c file`: the config is parsed, every
// static cluster and listener is instantiated, nothing binds or connects.
func validate(envoy, file string, extra ...*os.File) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, envoy, "--mode", "validate", "-c", file, "--log-level", "warn")
	cmd.ExtraFiles = extra
	return cmd.CombinedOutput()
}
