package jobwrap

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestParseDefaults(t *testing.T) {
	o, err := Parse([]string{"--", "sh", "-c", "exit 3"}, env(nil))
	require.NoError(t, err)
	assert.Equal(t, &Options{
		ReadyURL:      "http://127.0.0.1:15021/healthz/ready",
		ReadyTimeout:  2 * time.Minute,
		ReadyInterval: 500 * time.Millisecond,
		AgentQuitURL:  "http://127.0.0.1:15020/quitquitquit",
		EnvoyQuitURL:  "http://127.0.0.1:15000/quitquitquit",
		QuitTimeout:   5 * time.Second,
		Command:       []string{"sh", "-c", "exit 3"},
	}, o)
}

func TestParseFlagsWinOverEnv(t *testing.T) {
	e := env(map[string]string{
		"MESHD_JOB_WRAP_READY_URL":      "http://127.0.0.1:1/env",
		"MESHD_JOB_WRAP_READY_TIMEOUT":  "30", // seconds
		"MESHD_JOB_WRAP_AGENT_QUIT_URL": "",   // unset: default
		"MESHD_JOB_WRAP_ENVOY_QUIT_URL": "http://127.0.0.1:2/q",
		"MESHD_JOB_WRAP_NO_QUIT":        "true",
	})
	o, err := Parse([]string{"--ready-url", "http://127.0.0.1:3/flag", "--agent-quit-url", "", "--no-wait",
		"--ready-interval", "50ms", "--quit-timeout", "1s", "/bin/true", "--ready-url", "x"}, e)
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:3/flag", o.ReadyURL)
	assert.Equal(t, 30*time.Second, o.ReadyTimeout)
	assert.Equal(t, 50*time.Millisecond, o.ReadyInterval)
	assert.Equal(t, "", o.AgentQuitURL)
	assert.Equal(t, "http://127.0.0.1:2/q", o.EnvoyQuitURL)
	assert.Equal(t, time.Second, o.QuitTimeout)
	assert.True(t, o.NoWait)
	assert.True(t, o.NoQuit)
	// Flags stop at the command: its own flags are its.
	assert.Equal(t, []string{"/bin/true", "--ready-url", "x"}, o.Command)
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"no command", nil, nil, "no command"},
		{"only dashes", []string{"--"}, nil, "no command"},
		{"unknown flag", []string{"--wait", "--", "true"}, nil, "flag provided but not defined: -wait"},
		{"bad url", []string{"--ready-url", "127.0.0.1:15021", "--", "true"}, nil, `invalid value "127.0.0.1:15021" for flag -ready-url`},
		{"empty ready url", []string{"--ready-url", "", "--", "true"}, nil, "want an http:// or https:// URL"},
		{"bad duration", []string{"--ready-timeout", "soon", "--", "true"}, nil, "want a duration"},
		{"negative", []string{"--ready-timeout", "-1s", "--", "true"}, nil, "want a positive duration"},
		{"zero interval", []string{"--ready-interval", "0", "--", "true"}, nil, "want a positive duration"},
		{"bad env", []string{"--", "true"}, map[string]string{"MESHD_JOB_WRAP_READY_TIMEOUT": "2 minutes"},
			`invalid value "2 minutes" for environment variable MESHD_JOB_WRAP_READY_TIMEOUT`},
		{"bad bool env", []string{"--", "true"}, map[string]string{"MESHD_JOB_WRAP_NO_WAIT": "yes"},
			"environment variable MESHD_JOB_WRAP_NO_WAIT: want true or false"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.args, env(tc.env))
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrUsage)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestParseHelpAndZeroTimeout(t *testing.T) {
	_, err := Parse([]string{"--help"}, env(nil))
	assert.ErrorIs(t, err, ErrHelp)
	o, err := Parse([]string{"--ready-timeout", "0", "true"}, env(nil))
	require.NoError(t, err)
	assert.Zero(t, o.ReadyTimeout, "0 waits without limit")
}

func TestUsage(t *testing.T) {
	var b strings.Builder
	Usage(&b)
	for _, want := range []string{"meshd job-wrap [flags] -- CMD", "125", "127", "126", "128+N",
		"--ready-url URL   (env MESHD_JOB_WRAP_READY_URL)", "default: http://127.0.0.1:15021/healthz/ready",
		"--ready-timeout DURATION", "default: 2m0s", "--no-quit   (env MESHD_JOB_WRAP_NO_QUIT)", "default: false"} {
		assert.Contains(t, b.String(), want)
	}
}
