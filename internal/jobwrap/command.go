package jobwrap

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"syscall"
)

// Stdio is the standard input, output and error the command gets (an
// *os.File is passed on as is, so the command inherits the descriptor).
type Stdio struct {
	In       io.Reader
	Out, Err io.Writer
}

// RunCommand runs argv with stdio, forwarding every signal from sigs to it
// until it ends, and returns its exit status as a shell reports it: its
// exit code, 128+N if killed by signal N. If it cannot be started, the
// status is ExitNotFound or ExitCannotExec, with the error.
func RunCommand(argv []string, stdio Stdio, sigs <-chan os.Signal) (int, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio.In, stdio.Out, stdio.Err
	if err := cmd.Start(); err != nil {
		return startFailure(err), err
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err := cmd.Wait()
	close(done)
	return exitStatus(cmd.ProcessState, err)
}

// startFailure is the shell's status for a command that did not start:
// 127 when it does not exist, 126 otherwise (permission, format, a
// directory).
func startFailure(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return ExitNotFound
	}
	return ExitCannotExec
}

// exitStatus is the shell's status of a process that ran: its exit code,
// or 128+N for death by signal N.
func exitStatus(ps *os.ProcessState, err error) (int, error) {
	if ps == nil {
		return ExitCannotExec, err
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		// The process ended but copying its output failed.
		return ps.ExitCode(), err
	}
	return ps.ExitCode(), nil
}
