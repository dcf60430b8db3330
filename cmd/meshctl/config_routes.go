package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// routesHelp is the help of proxy-config routes.
const routesHelp = `proxy-config routes: NAME (route configuration), VHOST NAME, DOMAINS, MATCH and
VIRTUAL SERVICE per route (routes to the PassthroughCluster left out; a
virtual host without routes shows /* 404), route configurations with numeric
names first; with --verbose=false, NAME and VIRTUAL HOSTS (their number).
VIRTUAL SERVICE comes from istiod's route metadata when the config has it,
else (config from meshd) from the VirtualService meshd's scope has for the
virtual host's host (/debug/sidecarz), for the routes meshd did not name
"default" (its route when no VirtualService applies).
`

// routeFlags registers the routes filters and returns its printer.
func routeFlags(fs *flag.FlagSet) printer {
	var name string
	var verbose bool
	fs.StringVar(&name, "name", "", "only the route configuration of this name")
	fs.BoolVar(&verbose, "verbose", true, "a row per route with its virtual host, domains and match")
	return func(w io.Writer, src source, output string) error {
		d, err := loadDump(src)
		if err != nil {
			return err
		}
		if len(d.routes) == 0 {
			return fmt.Errorf("no routes found")
		}
		var list []*routev3.RouteConfiguration
		for _, rc := range sortedRoutes(d.routes) {
			if name == "" || rc.GetName() == name {
				list = append(list, rc)
			}
		}
		if output != "short" {
			return printProtos(w, list, output)
		}
		return printRoutes(w, list, verbose, loadScope(src))
	}
}

// sortedRoutes puts route configurations with numeric names (ports)
// first, in numeric order; the others keep the dump's order.
func sortedRoutes(rcs []*routev3.RouteConfiguration) []*routev3.RouteConfiguration {
	out := append([]*routev3.RouteConfiguration(nil), rcs...)
	sort.SliceStable(out, func(i, j int) bool {
		a, errA := strconv.Atoi(out[i].GetName())
		b, errB := strconv.Atoi(out[j].GetName())
		switch {
		case errA == nil && errB == nil:
			return a < b
		case errA == nil:
			return true
		}
		return false
	})
	return out
}

// printRoutes prints istioctl's routes table.
func printRoutes(w io.Writer, rcs []*routev3.RouteConfiguration, verbose bool, si scopeInfo) error {
	tw := tabwriter.NewWriter(w, 0, 8, 5, ' ', 0)
	if !verbose {
		fmt.Fprintln(tw, "NAME\tVIRTUAL HOSTS")
		for _, rc := range rcs {
			fmt.Fprintf(tw, "%s\t%d\n", rc.GetName(), len(rc.GetVirtualHosts()))
		}
		return tw.Flush()
	}
	fmt.Fprintln(tw, "NAME\tVHOST NAME\tDOMAINS\tMATCH\tVIRTUAL SERVICE")
	for _, rc := range rcs {
		for _, vh := range rc.GetVirtualHosts() {
			domains := describeDomains(vh.GetDomains())
			for _, r := range vh.GetRoutes() {
				if r.GetRoute().GetCluster() == "PassthroughCluster" {
					continue
				}
				vs := describeManagement(r.GetMetadata())
				if vs == "" && r.GetName() != "default" {
					vs = si.virtualService(rc.GetName(), vhostHost(vh.GetName()))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", rc.GetName(), vh.GetName(), domains, describeMatch(r.GetMatch()), vs)
			}
			if len(vh.GetRoutes()) == 0 {
				fmt.Fprintf(tw, "%s\t%s\t%s\t/*\t404\n", rc.GetName(), vh.GetName(), domains)
			}
		}
	}
	return tw.Flush()
}

// vhostHost is the host of a virtual host named host:port by istiod.
func vhostHost(name string) string {
	if i := strings.LastIndexByte(name, ':'); i > 0 && !strings.HasSuffix(name, "]") {
		return name[:i]
	}
	return name
}

// describeDomains is istioctl's DOMAINS: the one domain, else up to two
// without a port and without the expansions of a shorter one listed
// (name.ns.svc.cluster.local is left out when name.ns is there), and how
// many more.
func describeDomains(domains []string) string {
	switch len(domains) {
	case 0:
		return ""
	case 1:
		return domains[0]
	}
	var noPort []string
	for _, d := range domains {
		if !strings.Contains(d, ":") || (strings.Count(d, ":") > 2 && strings.HasSuffix(d, "]")) {
			noPort = append(noPort, d)
		}
	}
	noPort = unexpandDomains(noPort)
	if len(noPort) > 2 {
		return fmt.Sprintf("%s + %d more...", strings.Join(noPort[:2], ", "), len(noPort)-2)
	}
	return strings.Join(noPort, ", ")
}

// unexpandDomains drops each domain whose ".svc.cluster.local" or ".svc"
// suffix stripped is also in the list, keeping the order.
func unexpandDomains(domains []string) []string {
	set := map[string]bool{}
	for _, d := range domains {
		set[d] = true
	}
	var out []string
	for _, d := range domains {
		full, partial := strings.TrimSuffix(d, ".svc.cluster.local"), strings.TrimSuffix(d, ".svc")
		if (full != d && set[full]) || (partial != d && set[partial]) {
			continue
		}
		out = append(out, d)
	}
	return out
}
