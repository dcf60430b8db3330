package jobwrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Signals are the signals job-wrap forwards to the command.
var Signals = []os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT}

// Main is `meshd job-wrap ARGS...` (args without "job-wrap"): it parses
// args and the environment getenv, runs the lifecycle with stdio and
// returns the exit status. Help goes to stdio.Out, errors to stdio.Err.
func Main(args []string, getenv func(string) string, stdio Stdio) int {
	o, err := Parse(args, getenv)
	if errors.Is(err, ErrHelp) {
		Usage(stdio.Out)
		return 0
	}
	if err != nil {
		fmt.Fprintln(stdio.Err, "meshd job-wrap:", err)
		return ExitUsage
	}
	if o.Install != "" {
		if err := InstallSelf(o.Install); err != nil {
			fmt.Fprintln(stdio.Err, "meshd job-wrap:", err)
			return 1
		}
		fmt.Fprintln(stdio.Err, "meshd job-wrap: installed meshd at", o.Install)
		return 0
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, Signals...)
	defer signal.Stop(sigs)
	return Run(context.Background(), o, stdio, sigs)
}

// Run waits for the proxy (unless o.NoWait), runs o.Command with signals
// from sigs forwarded to it, asks the proxy to exit (unless o.NoQuit) and
// returns the command's exit status. If the proxy is not ready in time
// (ExitNotReady) or a signal arrives first (128+N), the command is not
// run, and the proxy is still asked to exit so that the pod can end. Log
// lines go to stdio.Err, prefixed "meshd job-wrap:".
func Run(ctx context.Context, o *Options, stdio Stdio, sigs <-chan os.Signal) int {
	w := &wrapper{o: o, stdio: stdio}
	if !o.NoWait {
		start := time.Now()
		if err := WaitReady(ctx, newClient(), o.ReadyURL, o.ReadyTimeout, o.ReadyInterval, sigs); err != nil {
			w.logf("%v; command not run", err)
			w.quit()
			return waitFailure(err)
		}
		w.logf("proxy ready after %s", time.Since(start).Round(time.Millisecond))
	}
	code, err := RunCommand(o.Command, stdio, sigs)
	if err != nil {
		w.logf("%v (exit status %d)", err, code)
	}
	w.quit()
	return code
}

// wrapper is one run's options and output.
type wrapper struct {
	o     *Options
	stdio Stdio
}

func (w *wrapper) logf(format string, args ...any) {
	fmt.Fprintf(w.stdio.Err, "meshd job-wrap: "+format+"\n", args...)
}

// quit asks the proxy to exit, unless NoQuit, and logs the outcome.
func (w *wrapper) quit() {
	if w.o.NoQuit {
		return
	}
	u, err := Quit(context.Background(), newClient(), w.o.QuitTimeout, w.o.AgentQuitURL, w.o.EnvoyQuitURL)
	if err != nil {
		w.logf("could not ask the proxy to exit (the pod may keep running): %v", err)
		return
	}
	w.logf("asked the proxy to exit (POST %s)", u)
}

// waitFailure is the exit status for WaitReady's error.
func waitFailure(err error) int {
	var se *SignalError
	if errors.As(err, &se) {
		if s, ok := se.Signal.(syscall.Signal); ok {
			return 128 + int(s)
		}
	}
	return ExitNotReady
}
