package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// defaultMeshdAddr is meshd's admin address (--admin-address) by default.
const defaultMeshdAddr = "127.0.0.1:15014"

// commonFlags are the flags every command has.
type commonFlags struct {
	meshdAddr string
	timeout   time.Duration
	output    string
}

// newFlagSet returns a silent flag set for a command: parse errors and
// --help come back from parseArgs, and usageError reports them.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// printHelp prints a command's help text and its flags to w.
func printHelp(w io.Writer, fs *flag.FlagSet, help string) {
	fmt.Fprint(w, help)
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// register adds --meshd-addr, --timeout and -o/--output (whose valid
// values are outputs) to fs.
func (c *commonFlags) register(fs *flag.FlagSet, outputs string) {
	addr := os.Getenv("MESHD_ADDR")
	if addr == "" {
		addr = defaultMeshdAddr
	}
	fs.StringVar(&c.meshdAddr, "meshd-addr", addr,
		"meshd's admin address, HOST:PORT or an http:// URL (env MESHD_ADDR); in a cluster,\n"+
			"kubectl -n istio-system port-forward deploy/meshd 15014:15014 and keep the default")
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "give up on an HTTP request after this long")
	fs.StringVar(&c.output, "o", "short", "output format: one of "+outputs)
	fs.StringVar(&c.output, "output", "short", "output format (same as -o)")
}

// checkOutput reports a usage error unless the output format is one of
// allowed.
func (c *commonFlags) checkOutput(allowed ...string) error {
	for _, a := range allowed {
		if c.output == a {
			return nil
		}
	}
	return fmt.Errorf("-o %q: want one of %s", c.output, strings.Join(allowed, ", "))
}

// parseArgs parses flags given anywhere among args (istioctl's habit:
// `meshctl pc clusters PROXY --fqdn x`), and returns the positional
// arguments; "--" ends the flags. It returns flag.ErrHelp for -h/--help.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// usageError reports a command-line problem: it prints err and a hint to
// stderr and returns exitUsage. For flag.ErrHelp it prints the command's
// help to stdout and returns exitOK.
func usageError(stdout, stderr io.Writer, fs *flag.FlagSet, help string, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		printHelp(stdout, fs, help)
		return exitOK
	}
	fmt.Fprintf(stderr, "meshctl %s: %v\nRun 'meshctl help %s' for usage.\n", fs.Name(), err, fs.Name())
	return exitUsage
}
