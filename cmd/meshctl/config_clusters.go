package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// clustersHelp is the help of proxy-config clusters.
const clustersHelp = `proxy-config clusters: SERVICE FQDN, PORT, SUBSET, DIRECTION, TYPE, DESTINATION RULE
per cluster, sorted by FQDN, subset, port and direction. A cluster named
otherwise than istiod's direction|port|subset|host (PassthroughCluster, a
bootstrap cluster) shows its name as FQDN. DESTINATION RULE comes from
istiod's cluster metadata when the config has it, else (config from meshd)
from the DestinationRule meshd chose for the host (/debug/sidecarz).
`

// clusterFilter is istioctl's cluster filter: substrings of the cluster
// name, and the port.
type clusterFilter struct {
	fqdn, direction, subset string
	port                    int
}

// verify reports whether the cluster passes the filter (istioctl's rule:
// each given field is a substring of the name; the port is "|port|").
func (f clusterFilter) verify(c *clusterv3.Cluster) bool {
	name := c.GetName()
	switch {
	case f.fqdn != "" && !strings.Contains(name, f.fqdn),
		f.direction != "" && !strings.Contains(name, f.direction),
		f.subset != "" && !strings.Contains(name, f.subset),
		f.port != 0 && !strings.Contains(name, "|"+strconv.Itoa(f.port)+"|"):
		return false
	}
	return true
}

// clusterFlags registers the clusters filters and returns its printer.
func clusterFlags(fs *flag.FlagSet) printer {
	var f clusterFilter
	fs.StringVar(&f.fqdn, "fqdn", "", "only clusters whose name contains this (the service FQDN)")
	fs.StringVar(&f.direction, "direction", "", "only clusters of this direction (inbound, outbound)")
	fs.StringVar(&f.subset, "subset", "", "only clusters whose name contains this subset")
	fs.IntVar(&f.port, "port", 0, "only clusters of this port")
	return func(w io.Writer, src source, output string) error {
		d, err := loadDump(src)
		if err != nil {
			return err
		}
		if len(d.clusters) == 0 {
			return fmt.Errorf("no clusters found")
		}
		var list []*clusterv3.Cluster
		for _, c := range sortedClusters(d.clusters) {
			if f.verify(c) {
				list = append(list, c)
			}
		}
		if output != "short" {
			return printProtos(w, list, output)
		}
		return printClusters(w, list, loadScope(src))
	}
}

// subsetKey is istiod's cluster name direction|port|subset|host, parsed;
// ok is false for another name.
type subsetKey struct {
	direction, subset, host string
	port                    int
	ok                      bool
}

// parseSubsetKey parses a cluster name (istioctl's safelyParseSubsetKey).
func parseSubsetKey(name string) subsetKey {
	p := strings.Split(name, "|")
	if len(p) < 4 {
		return subsetKey{host: name}
	}
	port, _ := strconv.Atoi(p[1])
	return subsetKey{direction: p[0], port: port, subset: p[2], host: p[3], ok: true}
}

// sortedClusters sorts as istioctl: by host, subset, port, direction.
func sortedClusters(cs []*clusterv3.Cluster) []*clusterv3.Cluster {
	out := append([]*clusterv3.Cluster(nil), cs...)
	sort.SliceStable(out, func(i, j int) bool { return lessKey(out[i].GetName(), out[j].GetName()) })
	return out
}

// lessKey orders cluster names by host, subset, port, direction.
func lessKey(a, b string) bool {
	x, y := parseSubsetKey(a), parseSubsetKey(b)
	switch {
	case x.host != y.host:
		return x.host < y.host
	case x.subset != y.subset:
		return x.subset < y.subset
	case x.port != y.port:
		return x.port < y.port
	}
	return x.direction < y.direction
}

// printClusters prints istioctl's clusters table.
func printClusters(w io.Writer, cs []*clusterv3.Cluster, si scopeInfo) error {
	tw := tabwriter.NewWriter(w, 0, 8, 5, ' ', 0)
	fmt.Fprintln(tw, "SERVICE FQDN\tPORT\tSUBSET\tDIRECTION\tTYPE\tDESTINATION RULE")
	for _, c := range cs {
		k := parseSubsetKey(c.GetName())
		dr := describeManagement(c.GetMetadata())
		if dr == "" && k.direction == "outbound" {
			dr = si.drByHost[k.host]
		}
		if !k.ok {
			fmt.Fprintf(tw, "%s\t-\t-\t-\t%s\t%s\n", c.GetName(), c.GetType(), dr)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", k.host, k.port, orDash(k.subset), k.direction, c.GetType(), dr)
	}
	return tw.Flush()
}
