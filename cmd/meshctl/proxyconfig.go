package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// proxyConfigHelp is the help of proxy-config.
const proxyConfigHelp = `Usage: meshctl proxy-config KIND [PROXY] [flags]

istioctl's proxy-config tables of one proxy's config. KIND is one of
clusters (c), listeners (l), routes (r), endpoints (ep), secret (s).

By default the config is what meshd sent the proxy, from meshd's
/debug/config_dump?proxyID=PROXY (PROXY: node ID or pod.namespace).
With --envoy-admin URL it is what the Envoy at URL holds, from its own
admin (/config_dump, and /clusters?format=json for endpoints), as istioctl
reads it through the pod; Envoy's dump also has its static resources (the
bootstrap's clusters and listeners). With -f FILE it is a saved dump of
either.

-o short (istioctl's table), json or yaml (the resources themselves).
`

// printer prints one kind of resource of a proxy's config.
type printer func(w io.Writer, src source, output string) error

// configKind is one KIND of proxy-config: its help, and how it registers
// its own flags and returns its printer.
type configKind struct {
	name, help string
	setup      func(fs *flag.FlagSet) printer
}

// configKinds are the kinds, by every name they answer to.
var configKinds = func() map[string]configKind {
	m := map[string]configKind{}
	for _, k := range []struct {
		configKind
		aliases []string
	}{
		{configKind{"clusters", clustersHelp, clusterFlags}, []string{"cluster", "c"}},
		{configKind{"listeners", listenersHelp, listenerFlags}, []string{"listener", "l"}},
		{configKind{"routes", routesHelp, routeFlags}, []string{"route", "r"}},
		{configKind{"endpoints", endpointsHelp, endpointFlags}, []string{"endpoint", "ep"}},
		{configKind{"secret", secretHelp, secretFlags}, []string{"secrets", "s"}},
	} {
		m[k.name] = k.configKind
		for _, a := range k.aliases {
			m[a] = k.configKind
		}
	}
	return m
}()

// runProxyConfig is `meshctl proxy-config`.
func runProxyConfig(args []string, stdout, stderr io.Writer) int {
	general := newFlagSet("proxy-config")
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		err := fmt.Errorf("missing KIND (clusters, listeners, routes, endpoints, secret)")
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
			err = flag.ErrHelp
		}
		return usageError(stdout, stderr, general, proxyConfigHelp, err)
	}
	kind, ok := configKinds[args[0]]
	if !ok {
		return usageError(stdout, stderr, general, proxyConfigHelp,
			fmt.Errorf("unknown KIND %q: want one of %s", args[0], kindNames()))
	}
	var cf commonFlags
	fs := newFlagSet("proxy-config " + kind.name)
	cf.register(fs, "short, json, yaml")
	var envoyAdmin, file string
	fs.StringVar(&envoyAdmin, "envoy-admin", "", "read the config from this Envoy admin URL (e.g. http://127.0.0.1:15000)\n"+
		"instead of meshd: what the proxy holds, static resources included")
	fs.StringVar(&file, "f", "", "read the config from a saved config dump (meshd's or Envoy's)")
	fs.StringVar(&file, "file", "", "same as -f")
	printKind := kind.setup(fs)
	help := proxyConfigHelp + "\n" + kind.help
	pos, err := parseArgs(fs, args[1:])
	switch {
	case err != nil:
	case len(pos) > 1:
		err = fmt.Errorf("want one PROXY, got %d arguments", len(pos))
	case len(pos) == 0 && envoyAdmin == "" && file == "":
		err = fmt.Errorf("missing PROXY (node ID or pod.namespace; 'meshctl proxy-status' lists them)")
	case envoyAdmin != "" && file != "":
		err = fmt.Errorf("--envoy-admin and -f are exclusive")
	default:
		err = cf.checkOutput("short", "json", "yaml")
	}
	if err != nil {
		return usageError(stdout, stderr, fs, help, err)
	}
	src := source{meshd: newClient(cf.meshdAddr, cf.timeout), file: file}
	if len(pos) == 1 {
		src.proxy = pos[0]
	}
	if envoyAdmin != "" {
		src.envoy = newEnvoyClient(envoyAdmin, cf.timeout)
	}
	if err := printKind(stdout, src, cf.output); err != nil {
		fmt.Fprintf(stderr, "meshctl proxy-config %s: %v\n", kind.name, err)
		return exitError
	}
	return exitOK
}

// kindNames lists the kinds' main names.
func kindNames() string {
	seen := map[string]bool{}
	var names []string
	for _, k := range configKinds {
		if !seen[k.name] {
			seen[k.name] = true
			names = append(names, k.name)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// loadDump fetches and parses the proxy's config dump.
func loadDump(src source) (*dump, error) {
	b, err := src.configDump()
	if err != nil {
		return nil, err
	}
	return parseDump(b)
}
