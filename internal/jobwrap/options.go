package jobwrap

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Exit statuses of job-wrap itself; every other status is the command's.
const (
	// ExitUsage is a bad flag, environment variable or a missing command.
	ExitUsage = 2
	// ExitNotReady means the proxy was not ready within the timeout: the
	// command was not run.
	ExitNotReady = 125
	// ExitCannotExec means the command was found but could not be run
	// (not executable, a directory, a bad format), as shells report it.
	ExitCannotExec = 126
	// ExitNotFound means the command was not found, as shells report it.
	ExitNotFound = 127
)

// Defaults of the flags: Istio's sidecar ports on loopback.
const (
	// DefaultReadyURL is the sidecar's readiness endpoint (pilot-agent's,
	// or the 15021 listener of `meshd bootstrap`).
	DefaultReadyURL = "http://127.0.0.1:15021/healthz/ready"
	// DefaultAgentQuitURL is pilot-agent's quit endpoint: it stops Envoy
	// and the agent.
	DefaultAgentQuitURL = "http://127.0.0.1:15020/quitquitquit"
	// DefaultEnvoyQuitURL is Envoy's admin quit endpoint, the fallback when
	// there is no agent (a `meshd bootstrap` sidecar).
	DefaultEnvoyQuitURL  = "http://127.0.0.1:15000/quitquitquit"
	DefaultReadyTimeout  = 2 * time.Minute
	DefaultReadyInterval = 500 * time.Millisecond
	DefaultQuitTimeout   = 5 * time.Second
)

// ErrHelp is returned by Parse for --help or -h; print Usage.
var ErrHelp = flag.ErrHelp

// ErrUsage is matched (errors.Is) by every error Parse returns for a bad
// flag, environment variable or missing command.
var ErrUsage = errors.New("usage error")

type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Options is what `meshd job-wrap` does. Parse fills it; Run reads it.
type Options struct {
	// ReadyURL is polled with GET until it answers 200 (--ready-url).
	ReadyURL string
	// ReadyTimeout bounds the wait; 0 waits without limit (--ready-timeout).
	ReadyTimeout time.Duration
	// ReadyInterval is the time between two polls (--ready-interval).
	ReadyInterval time.Duration
	// NoWait skips the wait (--no-wait).
	NoWait bool
	// AgentQuitURL is POSTed first when the command ends; "" skips it
	// (--agent-quit-url).
	AgentQuitURL string
	// EnvoyQuitURL is POSTed when AgentQuitURL fails; "" skips it
	// (--envoy-quit-url).
	EnvoyQuitURL string
	// QuitTimeout bounds each quit request (--quit-timeout).
	QuitTimeout time.Duration
	// NoQuit leaves the proxy running (--no-quit).
	NoQuit bool
	// Command is the program and its arguments.
	Command []string
	// Install, when set, copies meshd's own binary to this path and exits
	// (--install): what the injected init container of a wrapped Job runs,
	// so meshd's image needs no shell or cp.
	Install string
}

// option is one flag of job-wrap.
type option struct {
	flag, arg, env string
	value          flag.Value
	usage          string
}

func defaults() *Options {
	return &Options{
		ReadyURL:      DefaultReadyURL,
		ReadyTimeout:  DefaultReadyTimeout,
		ReadyInterval: DefaultReadyInterval,
		AgentQuitURL:  DefaultAgentQuitURL,
		EnvoyQuitURL:  DefaultEnvoyQuitURL,
		QuitTimeout:   DefaultQuitTimeout,
	}
}

// options returns every flag bound to o's fields, in help order.
func options(o *Options) []option {
	return []option{
		{"ready-url", "URL", "MESHD_JOB_WRAP_READY_URL", urlValue{&o.ReadyURL, false},
			"readiness endpoint of the sidecar, polled with GET until it answers 200 before the command runs"},
		{"ready-timeout", "DURATION", "MESHD_JOB_WRAP_READY_TIMEOUT", durationValue{&o.ReadyTimeout, false},
			"how long to wait for readiness; then job-wrap asks the proxy to exit and exits 125 without running " +
				"the command; 0 waits without limit"},
		{"ready-interval", "DURATION", "", durationValue{&o.ReadyInterval, true},
			"time between two readiness polls"},
		{"no-wait", "", "MESHD_JOB_WRAP_NO_WAIT", boolValue{&o.NoWait},
			"run the command at once, without waiting for readiness (when the sidecar is known to start first, e.g. Istio's holdApplicationUntilProxyStarts)"},
		{"agent-quit-url", "URL", "MESHD_JOB_WRAP_AGENT_QUIT_URL", urlValue{&o.AgentQuitURL, true},
			`pilot-agent's quit endpoint, POSTed when the command ends (it stops the agent and Envoy); "" skips it`},
		{"envoy-quit-url", "URL", "MESHD_JOB_WRAP_ENVOY_QUIT_URL", urlValue{&o.EnvoyQuitURL, true},
			`Envoy's admin quit endpoint, POSTed when the agent's fails (no agent: a meshd bootstrap sidecar); "" skips it`},
		{"quit-timeout", "DURATION", "", durationValue{&o.QuitTimeout, true},
			"time limit of each quit request"},
		{"no-quit", "", "MESHD_JOB_WRAP_NO_QUIT", boolValue{&o.NoQuit},
			"leave the proxy running when the command ends"},
		{"install", "PATH", "", pathValue{&o.Install},
			"copy this meshd binary to PATH (mode 0755) and exit, running no command: the init container " +
				"of a Job the injector wraps"},
	}
}

// Parse returns the Options for job-wrap's arguments (without "job-wrap")
// and environment getenv. A flag wins over its environment variable, which
// wins over the default. The command follows the flags, best after "--".
func Parse(args []string, getenv func(string) string) (*Options, error) {
	o := defaults()
	fs := flag.NewFlagSet("meshd job-wrap", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, op := range options(o) {
		if v := getenv(op.env); op.env != "" && v != "" {
			if err := op.value.Set(v); err != nil {
				return nil, usagef("invalid value %q for environment variable %s: %v (see meshd job-wrap --help)", v, op.env, err)
			}
		}
		fs.Var(op.value, op.flag, op.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, usagef("%v (see meshd job-wrap --help)", err)
	}
	o.Command = fs.Args()
	if o.Install != "" {
		if len(o.Command) > 0 {
			return nil, usagef("--install runs no command, got %q (see meshd job-wrap --help)", o.Command)
		}
		return o, nil
	}
	if len(o.Command) == 0 {
		return nil, usagef("no command: meshd job-wrap [flags] -- CMD [ARGS...] (see meshd job-wrap --help)")
	}
	return o, nil
}

// urlValue is an http(s) URL flag; empty is allowed if optional.
type urlValue struct {
	p        *string
	optional bool
}

func (v urlValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v urlValue) Set(s string) error {
	if s == "" && v.optional {
		*v.p = s
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("want an http:// or https:// URL")
	}
	*v.p = s
	return nil
}

// durationValue is a Go duration (2m, 500ms); a bare number is seconds.
type durationValue struct {
	p        *time.Duration
	positive bool
}

func (v durationValue) String() string {
	if v.p == nil {
		return ""
	}
	return v.p.String()
}

func (v durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		n, nerr := strconv.ParseUint(s, 10, 32)
		if nerr != nil {
			return fmt.Errorf("want a duration such as 90s or 2m")
		}
		d = time.Duration(n) * time.Second
	}
	if d < 0 || (v.positive && d == 0) {
		return fmt.Errorf("want a positive duration")
	}
	*v.p = d
	return nil
}

// pathValue is an absolute file path.
type pathValue struct{ p *string }

func (v pathValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}

func (v pathValue) Set(s string) error {
	if !strings.HasPrefix(s, "/") {
		return fmt.Errorf("want an absolute path")
	}
	*v.p = s
	return nil
}

// boolValue is a boolean flag (--no-wait, or --no-wait=false).
type boolValue struct{ p *bool }

func (v boolValue) String() string {
	if v.p == nil {
		return "false"
	}
	return strconv.FormatBool(*v.p)
}

func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	*v.p = b
	return nil
}

func (v boolValue) IsBoolFlag() bool { return true }
