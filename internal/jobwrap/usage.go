package jobwrap

import (
	"fmt"
	"io"

	"github.com/meshd/meshd/internal/textwrap"
)

// Usage writes job-wrap's help: what it does, its exit statuses and every
// flag with its environment variable and default.
func Usage(w io.Writer) {
	fmt.Fprint(w, `usage: meshd job-wrap [flags] -- CMD [ARGS...]

The entrypoint of a Job or CronJob container whose pod has a mesh sidecar:
  1. wait until the sidecar is ready (GET --ready-url answers 200);
  2. run CMD with standard input, output and error passed through, and
     SIGTERM, SIGINT, SIGHUP and SIGQUIT forwarded to it;
  3. when CMD ends, however it ends, ask the proxy to exit: POST
     --agent-quit-url (pilot-agent), else --envoy-quit-url (Envoy's admin),
     so that the pod can complete; a failure is logged, the exit status
     stays CMD's;
  4. exit with CMD's exit status.

Exit status: CMD's; 128+N if CMD was killed by signal N; 127 if CMD was
not found and 126 if it could not be executed (as shells); 125 if the
proxy was not ready within --ready-timeout (CMD was not run, the proxy was
asked to exit); 128+N if job-wrap got signal N while waiting (CMD was not
run); 2 for a usage error.

Each setting is taken from its flag, else its environment variable if set,
else its default.

Flags:
`)
	for _, o := range options(defaults()) {
		fmt.Fprintf(w, "\n  --%s", o.flag)
		if o.arg != "" {
			fmt.Fprintf(w, " %s", o.arg)
		}
		if o.env != "" {
			fmt.Fprintf(w, "   (env %s)", o.env)
		}
		fmt.Fprintf(w, "\n%s", textwrap.Wrap(o.usage, "        ", 78))
		def := o.value.String()
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "        default: %s\n", def)
	}
}
