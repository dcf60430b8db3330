package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
)

// endpointsHelp is the help of proxy-config endpoints.
const endpointsHelp = `proxy-config endpoints: ENDPOINT, STATUS, OUTLIER CHECK and CLUSTER per
endpoint, sorted by address, port and cluster. From meshd, STATUS is the
health status meshd sent (EDS) and OUTLIER CHECK is "-": outlier detection
happens in Envoy. With --envoy-admin (Envoy's /clusters?format=json, as
istioctl), both are Envoy's own (OUTLIER CHECK: OK or FAILED). -f FILE takes
a config dump with endpoints (/config_dump?include_eds) or Envoy's clusters.
-o json|yaml prints the ClusterLoadAssignments (Envoy: its ClusterStatuses).
`

// endpointFilter is istioctl's endpoint filter.
type endpointFilter struct {
	address, cluster, status string
	port                     uint
}

// endpointRow is one endpoint of one cluster.
type endpointRow struct {
	address string
	port    uint32
	cluster string
	status  string
	outlier string
}

// verify reports whether the endpoint passes the filter.
func (f endpointFilter) verify(r endpointRow) bool {
	switch {
	case f.address != "" && !strings.EqualFold(r.address, f.address),
		f.port != 0 && uint(r.port) != f.port,
		f.cluster != "" && !strings.EqualFold(r.cluster, f.cluster),
		f.status != "" && !strings.EqualFold(r.status, f.status):
		return false
	}
	return true
}

// endpointFlags registers the endpoints filters and returns its printer.
func endpointFlags(fs *flag.FlagSet) printer {
	var f endpointFilter
	fs.StringVar(&f.address, "address", "", "only endpoints of this address (IP, no port)")
	fs.UintVar(&f.port, "port", 0, "only endpoints of this port")
	fs.StringVar(&f.cluster, "cluster", "", "only endpoints of this cluster")
	fs.StringVar(&f.status, "status", "", "only endpoints of this status (HEALTHY, UNHEALTHY, DRAINING...)")
	return func(w io.Writer, src source, output string) error {
		envoy, err := endpointsFromEnvoy(src)
		if err != nil {
			return err
		}
		if envoy {
			return envoyEndpoints(w, src, f, output)
		}
		d, err := loadDump(src)
		if err != nil {
			return err
		}
		var rows []endpointRow
		var claList []*endpointv3.ClusterLoadAssignment
		for _, cla := range d.endpoints {
			n := len(rows)
			for _, lle := range cla.GetEndpoints() {
				for _, ep := range lle.GetLbEndpoints() {
					sa := ep.GetEndpoint().GetAddress().GetSocketAddress()
					r := endpointRow{address: sa.GetAddress(), port: sa.GetPortValue(), cluster: cla.GetClusterName(),
						status: ep.GetHealthStatus().String(), outlier: "-"}
					if f.verify(r) {
						rows = append(rows, r)
					}
				}
			}
			if len(rows) > n {
				claList = append(claList, cla)
			}
		}
		if output != "short" {
			return printProtos(w, claList, output)
		}
		return printEndpoints(w, rows)
	}
}

// endpointsFromEnvoy reports whether endpoints are read from Envoy's
// /clusters: with --envoy-admin, or a file holding that output.
func endpointsFromEnvoy(src source) (bool, error) {
	if src.file == "" {
		return src.envoy != nil, nil
	}
	b, err := os.ReadFile(src.file)
	if err != nil {
		return false, err
	}
	return bytes.Contains(b, []byte(`"cluster_statuses"`)) || bytes.Contains(b, []byte(`"clusterStatuses"`)), nil
}

// envoyEndpoints prints the endpoints of Envoy's /clusters?format=json.
func envoyEndpoints(w io.Writer, src source, f endpointFilter, output string) error {
	cs, err := src.envoyClusters()
	if err != nil {
		return err
	}
	var rows []endpointRow
	var statuses []*adminv3.ClusterStatus
	for _, c := range cs.GetClusterStatuses() {
		n := len(rows)
		for _, h := range c.GetHostStatuses() {
			r := endpointRow{cluster: c.GetName(), status: h.GetHealthStatus().GetEdsHealthStatus().String(), outlier: "OK"}
			if h.GetHealthStatus().GetFailedOutlierCheck() {
				r.outlier = "FAILED"
			}
			switch a := h.GetAddress(); {
			case a.GetSocketAddress() != nil:
				r.address, r.port = a.GetSocketAddress().GetAddress(), a.GetSocketAddress().GetPortValue()
			case a.GetPipe() != nil:
				r.address = "unix://" + a.GetPipe().GetPath()
			case a.GetEnvoyInternalAddress() != nil:
				ia := a.GetEnvoyInternalAddress()
				r.address = "envoy://" + ia.GetServerListenerName() + "/" + ia.GetEndpointId()
			default:
				r.address = "unknown"
			}
			if f.verify(r) {
				rows = append(rows, r)
			}
		}
		if len(rows) > n {
			statuses = append(statuses, c)
		}
	}
	if output != "short" {
		return printProtos(w, statuses, output)
	}
	return printEndpoints(w, rows)
}

// printEndpoints prints istioctl's endpoints table.
func printEndpoints(w io.Writer, rows []endpointRow) error {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.address != b.address {
			return a.address < b.address
		}
		if a.port != b.port {
			return a.port < b.port
		}
		return a.cluster < b.cluster
	})
	tw := tabwriter.NewWriter(w, 0, 8, 5, ' ', 0)
	fmt.Fprintln(tw, "ENDPOINT\tSTATUS\tOUTLIER CHECK\tCLUSTER")
	for _, r := range rows {
		ep := r.address
		if r.port != 0 {
			ep += ":" + strconv.Itoa(int(r.port))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", ep, r.status, r.outlier, r.cluster)
	}
	return tw.Flush()
}
