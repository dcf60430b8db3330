package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/meshd/meshd/internal/bootstrap"
)

// runBootstrap prints an Envoy bootstrap for meshd (see meshd bootstrap
// --help) and returns the exit status: 2 for a usage error, 1 for any other.
// Warnings (an admin address other than loopback) go to standard error.
func runBootstrap(args []string) int {
	host, _ := os.Hostname()
	o, err := bootstrap.Parse(args, os.Getenv, host)
	if errors.Is(err, bootstrap.ErrHelp) {
		bootstrap.Usage(os.Stdout)
		return 0
	}
	if err == nil {
		for _, w := range o.Warnings() {
			fmt.Fprintln(os.Stderr, "meshd bootstrap: warning:", w)
		}
		err = writeBootstrap(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshd bootstrap:", err)
		if errors.Is(err, bootstrap.ErrUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// writeBootstrap writes o's bootstrap to o.Output, or standard output. With
// --tls the bootstrap holds the service-account token, and the file is
// written with mode 0600 (bootstrap.WriteOutput).
func writeBootstrap(o *bootstrap.Options) error {
	out, err := bootstrap.Generate(o)
	if err != nil {
		return err
	}
	if o.Output == "" || o.Output == "-" {
		_, err = os.Stdout.Write(out)
		return err
	}
	return bootstrap.WriteOutput(o, out)
}
