package main

import (
	"os"

	"github.com/meshd/meshd/internal/jobwrap"
)

// runJobWrap is `meshd job-wrap [flags] -- CMD [ARGS...]`, the entrypoint
// of a Job container with a sidecar (see meshd job-wrap --help): it returns
// the command's exit status, or job-wrap's own (jobwrap.ExitNotReady,
// jobwrap.ExitUsage, ...).
func runJobWrap(args []string) int {
	return jobwrap.Main(args, os.Getenv, jobwrap.Stdio{In: os.Stdin, Out: os.Stdout, Err: os.Stderr})
}
