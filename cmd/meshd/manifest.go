package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/meshd/meshd/internal/manifest"
)

// runManifest prints meshd's in-cluster install (see meshd manifest --help)
// and returns the exit status: 2 for a usage error.
func runManifest(args []string) int {
	o, err := manifest.Parse(args, os.ReadFile)
	if errors.Is(err, manifest.ErrHelp) {
		manifest.Usage(os.Stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshd manifest:", err)
		return 2
	}
	out, err := o.Render()
	if err == nil {
		_, err = os.Stdout.Write(out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "meshd manifest:", err)
		return 1
	}
	return 0
}
