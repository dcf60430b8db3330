// Command meshd is an xDS control plane for Istio-configured meshes: it reads
// Kubernetes and Istio config and serves Envoy sidecars, gateways and
// proxyless gRPC clients over ADS.
//
// Usage:
//
//	meshd serve --config-dir DIR [flags]
//	meshd serve --help
//	meshd bootstrap [flags]
//	meshd job-wrap [flags] -- CMD [ARGS...]
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/meshd/meshd/internal/config"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		err := serve(os.Args[2:])
		if errors.Is(err, config.ErrHelp) {
			config.Usage(os.Stdout)
			return
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "meshd:", err)
			os.Exit(1)
		}
	case "bootstrap":
		os.Exit(runBootstrap(os.Args[2:]))
	case "manifest":
		os.Exit(runManifest(os.Args[2:]))
	case "job-wrap":
		os.Exit(runJobWrap(os.Args[2:]))
	case "help", "-h", "--help":
		usage()
	default:
		fmt.Fprintf(os.Stderr, "meshd: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, `usage: meshd <command> [flags]

commands:
  serve       serve xDS (ADS) and the admin endpoints; see 'meshd serve --help'
  bootstrap   print an Envoy bootstrap for a sidecar or gateway of meshd; see 'meshd bootstrap --help'
  manifest    print meshd's in-cluster install (kubectl apply -f -); see 'meshd manifest --help'
  job-wrap    run a Job's command once its sidecar is ready, then stop the sidecar; see 'meshd job-wrap --help'`)
}
