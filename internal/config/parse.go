package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// ErrHelp is returned by Parse when --help or -h is given; print Usage.
var ErrHelp = flag.ErrHelp

// Parse returns the Settings for meshd serve's arguments args (without
// "serve") and environment getenv: each setting takes its flag if given,
// else its environment variable if set and non-empty, else its default.
// An invalid value is an error naming the flag or variable and saying what
// is wanted, for example
//
//	environment variable PILOT_PUSH_THROTTLE="abc": want a positive integer, or 0 for the default
//
// Parse prints nothing; with --help it returns ErrHelp.
func Parse(args []string, getenv func(string) string) (*Settings, error) {
	s := defaults()
	opts := options(s)
	fs := flag.NewFlagSet("meshd serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, o := range opts {
		fs.Var(o.value, o.flag, o.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, fmt.Errorf("%s (see meshd serve --help)", strings.Replace(err.Error(), "flag -", "flag --", 1))
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see meshd serve --help)", fs.Arg(0))
	}
	byFlag := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { byFlag[f.Name] = true })
	for _, o := range opts {
		if o.env == "" || byFlag[o.flag] {
			continue
		}
		v := getenv(o.env)
		if v == "" {
			continue
		}
		if err := o.value.Set(v); err != nil {
			return nil, fmt.Errorf("environment variable %s=%q: %w", o.env, v, err)
		}
	}
	if s.ConfigDir != "" && byFlag["kubeconfig"] {
		return nil, errors.New("--config-dir and --kubeconfig are exclusive: pick the file provider or a cluster")
	}
	if s.ConfigDir != "" {
		s.Kubeconfig = "" // $KUBECONFIG does not matter to the file provider
	}
	if err := s.Security.check(); err != nil {
		return nil, err
	}
	if err := s.Inject.check(); err != nil {
		return nil, err
	}
	if err := s.JWT.check(); err != nil {
		return nil, err
	}
	if s.XDSAddress == Off && !s.Security.SecureEnabled() {
		return nil, errors.New("--xds-address and --secure-xds-address are both off: nothing would serve xDS")
	}
	return s, nil
}
