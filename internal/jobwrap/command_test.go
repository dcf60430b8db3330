package jobwrap

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRunCommandExitStatus(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "job.sh")
	require.NoError(t, os.WriteFile(notExec, []byte("#!/bin/sh\nexit 0\n"), 0o644))
	for _, tc := range []struct {
		name    string
		argv    []string
		want    int
		wantErr string
	}{
		{"success", []string{"sh", "-c", "exit 0"}, 0, ""},
		{"failure", []string{"sh", "-c", "exit 3"}, 3, ""},
		{"255", []string{"sh", "-c", "exit 255"}, 255, ""},
		{"killed", []string{"sh", "-c", "kill -KILL $$"}, 128 + 9, ""},
		{"not found in PATH", []string{"meshd-no-such-command"}, 127, "executable file not found"},
		{"not found path", []string{filepath.Join(dir, "missing")}, 127, "no such file"},
		{"not executable", []string{notExec}, 126, "permission denied"},
		{"directory", []string{dir}, 126, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code, err := RunCommand(tc.argv, Stdio{Out: &out, Err: &errOut}, nil)
			assert.Equal(t, tc.want, code)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
			} else if tc.want < 126 {
				assert.NoError(t, err)
			}
		})
	}
}

func TestRunCommandStdio(t *testing.T) {
	var out, errOut bytes.Buffer
	code, err := RunCommand([]string{"sh", "-c", "read x; echo out:$x; echo err:$x >&2"},
		Stdio{In: strings.NewReader("hello\n"), Out: &out, Err: &errOut}, nil)
	require.NoError(t, err)
	assert.Equal(t, 0, code)
	assert.Equal(t, "out:hello\n", out.String())
	assert.Equal(t, "err:hello\n", errOut.String())
}

func TestRunCommandForwardsSignals(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		want int
	}{{syscall.SIGTERM, 10}, {syscall.SIGINT, 11}, {syscall.SIGHUP, 12}, {syscall.SIGQUIT, 13}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "started")
			// The child traps every forwarded signal and exits with its
			// own status for each; "started" says the traps are set. It
			// gives up after 10 s (exit 99).
			script := `trap 'exit 10' TERM; trap 'exit 11' INT; trap 'exit 12' HUP; trap 'exit 13' QUIT; ` +
				`touch "$1"; i=0; while [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; exit 99`
			sigs := make(chan os.Signal, 1)
			go func() {
				assert.Eventually(t, func() bool { _, err := os.Stat(marker); return err == nil }, 10*time.Second, 10*time.Millisecond)
				sigs <- tc.sig
			}()
			code, err := RunCommand([]string{"sh", "-c", script, "sh", marker}, Stdio{}, sigs)
			require.NoError(t, err)
			assert.Equal(t, tc.want, code)
		})
	}
}

func TestRunCommandSignalDeath(t *testing.T) {
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM // before the child even runs: kept until it does
	code, err := RunCommand([]string{"sleep", "20"}, Stdio{}, sigs)
	require.NoError(t, err)
	assert.Equal(t, 143, code)
}
