package bootstrap

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/meshd/meshd/internal/model"
)

// ErrHelp is returned by Parse when --help or -h is given; print Usage.
var ErrHelp = flag.ErrHelp

// ErrUsage is matched (errors.Is) by every error Parse returns for a bad
// flag, argument or environment variable: a usage error, exit status 2.
var ErrUsage = errors.New("usage error")

// usageError is a message that matches ErrUsage.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// Parse returns the Options for meshd bootstrap's arguments args (without
// "bootstrap"), environment getenv and host name hostname (the pod name's
// last default). Each flag takes its value if given, else its environment
// variable if set and non-empty, else its default. An invalid value is an
// error naming the flag or variable that matches ErrUsage, e.g.
//
//	invalid value "mesh" for flag --type: want sidecar or router (see meshd bootstrap --help)
//
// Parse prints nothing; with --help it returns ErrHelp. What is allowed
// but unsafe is in the result's Warnings, for the caller to print.
func Parse(args []string, getenv func(string) string, hostname string) (*Options, error) {
	o := defaults()
	opts := options(o)
	fs := flag.NewFlagSet("meshd bootstrap", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	for _, op := range opts {
		fs.Var(op.value, op.flag, op.usage)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, usagef("%s (see meshd bootstrap --help)", flagError(err))
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q (see meshd bootstrap --help)", fs.Arg(0))
	}
	set := given{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = "" })
	for _, op := range opts {
		if op.env == "" || set.has(op.flag) {
			continue
		}
		if v := getenv(op.env); v != "" {
			if err := op.value.Set(v); err != nil {
				return nil, usagef("environment variable %s=%q (for --%s): %v", op.env, v, op.flag, err)
			}
			set[op.flag] = op.env
		}
	}
	if err := o.derive(set, hostname); err != nil {
		return nil, err
	}
	return o, nil
}

// flagError is the flag package's error with this command's flag spelling:
// "invalid value "x" for flag --name: ...", boolean flags included (the
// package says "invalid boolean value "x" for -name").
func flagError(err error) string {
	msg := strings.Replace(err.Error(), "invalid boolean value ", "invalid value ", 1)
	msg = strings.Replace(msg, "flag -", "flag --", 1)
	return strings.Replace(msg, "\" for -", "\" for flag --", 1)
}

// given records the settings taken from the command line or environment:
// flag name to the environment variable it came from, "" for the flag.
type given map[string]string

// has reports whether the flag was set, by itself or its variable.
func (g given) has(flag string) bool {
	_, ok := g[flag]
	return ok
}

// explicit reports whether the flag itself was given.
func (g given) explicit(flag string) bool {
	env, ok := g[flag]
	return ok && env == ""
}

// invalid is the usage error for a value that passed its flag's own check
// but not a later one (such as reading the file it names), worded as Parse
// words the others: naming the flag, or the variable it came from.
func (g given) invalid(flag, value string, err error) error {
	if env := g[flag]; env != "" {
		return usagef("environment variable %s=%q (for --%s): %v", env, value, flag, err)
	}
	return usagef("invalid value %q for flag --%s: %v", value, flag, err)
}

// derive fills the defaults that depend on other values, then checks what
// involves several flags.
func (o *Options) derive(set given, hostname string) error {
	if !set.has("pod-name") {
		if nodeField(hostname) != nil {
			return usagef("--pod-name not given, $POD_NAME empty, and the host name %q cannot stand in: set --pod-name", hostname)
		}
		o.PodName = hostname
	}
	if !set.has("workload-name") {
		o.WorkloadName = workloadName(o.PodName, o.Labels["pod-template-hash"])
	}
	delete(o.Labels, "pod-template-hash")
	if err := o.checkPorts(); err != nil {
		return err
	}
	if err := o.deriveTLS(set); err != nil {
		return err
	}
	if o.NodeID != "" {
		p, err := model.ParseProxy(o.NodeID, nil)
		if err != nil {
			return usagef("invalid value %q for flag --node-id: %v", o.NodeID, err)
		}
		if p.Type != o.Type {
			return usagef("--node-id %q is a %s but --type is %s: give the same type to both", o.NodeID, p.Type, o.Type)
		}
	}
	return nil
}

// checkPorts refuses admin, stats and readiness ports that are meshd's
// sidecar listeners' (reservedPorts) or the same as each other.
func (o *Options) checkPorts() error {
	ports := map[uint32]string{}
	for _, p := range []struct {
		flag string
		port uint32
	}{{"admin-port", o.AdminPort}, {"stats-port", o.StatsPort}, {"readiness-port", o.ReadinessPort}} {
		if what, ok := reservedPorts[p.port]; ok {
			return usagef("invalid value \"%d\" for flag --%s: port %d is meshd's %s; pick another port", p.port, p.flag, p.port, what)
		}
		if other, dup := ports[p.port]; dup {
			return usagef("--%s and --%s are both %d: Envoy cannot bind one port twice", other, p.flag, p.port)
		}
		ports[p.port] = p.flag
	}
	return nil
}

// Warnings returns what is allowed but unsafe or likely wrong in o, one
// sentence each, for the caller to print on standard error: an admin
// address other than loopback (Envoy's admin has no authentication; tests
// run it on a private network namespace's address), and an xDS port that
// is meshd's default for the other transport (see xdsPortWarning).
func (o *Options) Warnings() []string {
	var out []string
	for _, w := range []string{o.adminWarning(), o.xdsPortWarning()} {
		if w != "" {
			out = append(out, w)
		}
	}
	return out
}

// adminWarning is the warning for an admin address other than loopback,
// or "".
func (o *Options) adminWarning() string {
	ip := net.ParseIP(o.AdminAddress)
	if ip == nil || ip.IsLoopback() {
		return ""
	}
	secret := ""
	if o.TLS {
		secret = ", the service-account token of --token-file among it"
	}
	return fmt.Sprintf("--admin-address %s is not a loopback address: Envoy's admin has no authentication, "+
		"so anyone who can connect to port %d there can stop Envoy (/quitquitquit), change its runtime (/runtime_modify) "+
		"and read its config (/config_dump%s); keep it on 127.0.0.1 unless the network is private",
		o.AdminAddress, o.AdminPort, secret)
}

// workloadName guesses the owning Deployment's name from a pod name the way
// Istio's injector does from the pod's owner (pkg/kube/util.go,
// GetDeployMetaFromPod): a Deployment's pod is named
// <deployment>-<pod-template-hash>-<suffix>. Without that hash label, or
// when the name does not have that shape, the pod name is the workload name
// (as for a bare pod).
func workloadName(pod, hash string) string {
	if hash == "" {
		return pod
	}
	if i := strings.LastIndex(pod, "-"+hash+"-"); i > 0 {
		return pod[:i]
	}
	return pod
}
