// Command meshctl is istioctl's proxy-status and proxy-config for meshd:
// it reads meshd's admin endpoints (/debug/syncz, /debug/adsz,
// /debug/config_dump, /debug/sidecarz) over HTTP, or an Envoy's own admin
// (--envoy-admin), and prints istioctl's tables. It works against any
// meshd whose admin port it can reach: the file provider on a laptop, or a
// cluster through `kubectl port-forward` (--meshd-addr, MESHD_ADDR).
//
// Exit status: 0 success, 1 an error talking to meshd (or Envoy), 2 a usage
// error. `meshctl what-if` is dispatched to whatIf, set by whatif.go.
package main

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes of every command but what-if, which has its own.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

// whatIf runs `meshctl what-if ARGS`; whatif.go sets it in an init(). It is
// nil in a build without it.
var whatIf func(args []string, stdout, stderr io.Writer) int

// usageText is meshctl's help.
const usageText = `meshctl: inspect what meshd serves its proxies.

Usage:
  meshctl proxy-status [PROXY] [flags]       (alias ps)
  meshctl proxy-config KIND [PROXY] [flags]  (alias pc; KIND: clusters, listeners,
                                              routes, endpoints, secret)
  meshctl what-if -f CHANGE.yaml [flags]
  meshctl help [COMMAND]

PROXY is a node ID (sidecar~10.1.2.3~pod.ns~ns.svc.cluster.local) or pod.namespace.

Every command reads meshd's admin endpoints at --meshd-addr (default
$MESHD_ADDR, else 127.0.0.1:15014). In a cluster:

  kubectl -n istio-system port-forward deploy/meshd 15014:15014 &
  meshctl proxy-status

Exit status: 0 ok, 1 error talking to meshd, 2 usage error.
Run 'meshctl help COMMAND' for a command's flags.
`

// main runs meshctl and exits with its status.
func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// run executes the command line args (without the program name) and
// returns the exit status.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "proxy-status", "ps":
		return runProxyStatus(rest, stdout, stderr)
	case "proxy-config", "pc":
		return runProxyConfig(rest, stdout, stderr)
	case "what-if":
		if whatIf == nil {
			fmt.Fprintln(stderr, "what-if: not available in this build")
			return exitUsage
		}
		return whatIf(rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(rest) > 0 && rest[0] != "help" && !strings.HasPrefix(rest[0], "-") {
			return run(append(append([]string(nil), rest...), "--help"), stdout, stderr)
		}
		fmt.Fprint(stdout, usageText)
		return exitOK
	default:
		fmt.Fprintf(stderr, "meshctl: unknown command %q\n\n%s", cmd, usageText)
		return exitUsage
	}
}
