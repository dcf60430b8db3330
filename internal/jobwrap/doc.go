// Package jobwrap owns `meshd job-wrap`, the entrypoint of a Kubernetes Job
// or CronJob container whose pod has a mesh sidecar: it waits until the
// sidecar is ready, runs the job's command with signals forwarded, asks the
// sidecar to exit when the command ends (so that the pod can complete), and
// exits with the command's exit code.
//
// Parse turns arguments and environment into Options; Run carries out the
// lifecycle and returns the exit status. The steps are WaitReady (poll the
// readiness URL until 200), RunCommand (exec, forward signals, exit status
// as a shell reports it) and Quit (POST pilot-agent's /quitquitquit, then
// Envoy's admin /quitquitquit as fallback). The only I/O is those HTTP
// requests, the child process and the log lines written to standard error.
package jobwrap
