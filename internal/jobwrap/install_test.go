package jobwrap

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestInstall: --install copies the running binary, executable, and runs
// no command; with a command it is a usage error; a relative path is
// refused; an unwritable directory is an error naming the path.
func TestInstall(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "meshd")
	var out bytes.Buffer
	code := Main([]string{"--install", dest}, func(string) string { return "" }, Stdio{In: nil, Out: &out, Err: &out})
	require.Equal(t, 0, code, out.String())
	self, err := os.Executable()
	require.NoError(t, err)
	want, err := os.ReadFile(self)
	require.NoError(t, err)
	got, err := os.ReadFile(dest)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(want, got), "the copy is the running binary")
	st, err := os.Stat(dest)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), st.Mode().Perm())
	assert.Contains(t, out.String(), "installed meshd at "+dest)

	_, err = Parse([]string{"--install", dest, "--", "true"}, func(string) string { return "" })
	require.ErrorIs(t, err, ErrUsage)
	_, err = Parse([]string{"--install", "meshd"}, func(string) string { return "" })
	require.ErrorContains(t, err, "want an absolute path")
	err = copyExecutable(self, "/proc/no-such-dir/meshd")
	require.ErrorContains(t, err, "installing meshd at /proc/no-such-dir/meshd")
}
