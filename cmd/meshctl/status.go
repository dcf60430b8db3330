package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// proxyStatusHelp is the help of proxy-status.
const proxyStatusHelp = `Usage: meshctl proxy-status [PROXY] [flags]

Without PROXY: istioctl's table of every proxy connected to meshd, from
meshd's /debug/syncz. Per xDS type (CDS, LDS, EDS, RDS, ECDS):

  SYNCED    the last response sent was ACKed
  STALE     a response was sent and is not ACKed yet
  NOT SENT  nothing of the type was sent (not subscribed; meshd serves no ECDS)
  NACKED    the proxy rejected the last response sent (meshd counts NACKs,
            not which nonce was rejected: a response not ACKed yet of a
            type NACKed before shows NACKED)

ISTIOD is the meshd address asked; CLUSTER and VERSION (the proxy's
ISTIO_VERSION) are "-": meshd does not report them. -o json|yaml prints
meshd's /debug/syncz entries (with PROXY: its /debug/adsz entries).

With PROXY (node ID or pod.namespace), from /debug/adsz: its scope and
stream, and per type (SDS too) the version meshd would send it now (the
last it sent: a push sends every change) against the version it ACKed,
with its last NACK message. meshd keeps the versions of what it sent, not
the resources a proxy ACKed: the comparison says which types differ, not
which fields. For the resources, see 'meshctl proxy-config' (meshd's view)
and 'meshctl proxy-config --envoy-admin URL' (the proxy's own).
`

// typeColumns are istioctl's type columns, with meshd's short type names.
var typeColumns = []struct{ column, short string }{
	{"CDS", "cds"}, {"LDS", "lds"}, {"EDS", "eds"}, {"RDS", "rds"}, {"ECDS", "ecds"},
}

// runProxyStatus is `meshctl proxy-status`.
func runProxyStatus(args []string, stdout, stderr io.Writer) int {
	var cf commonFlags
	fs := newFlagSet("proxy-status")
	cf.register(fs, "short, json, yaml")
	pos, err := parseArgs(fs, args)
	if err == nil && len(pos) > 1 {
		err = fmt.Errorf("want at most one PROXY, got %d arguments", len(pos))
	}
	if err == nil {
		err = cf.checkOutput("short", "json", "yaml")
	}
	if err != nil {
		return usageError(stdout, stderr, fs, proxyStatusHelp, err)
	}
	c := newClient(cf.meshdAddr, cf.timeout)
	if len(pos) == 1 {
		err = proxyDetail(stdout, c, pos[0], cf.output)
	} else {
		err = statusTable(stdout, c, cf.output)
	}
	if err != nil {
		fmt.Fprintf(stderr, "meshctl proxy-status: %v\n", err)
		return exitError
	}
	return exitOK
}

// statusTable prints istioctl's proxy-status table (or, for -o json|yaml,
// meshd's /debug/syncz as it is).
func statusTable(w io.Writer, c *client, output string) error {
	body, err := c.get("/debug/syncz")
	if err != nil {
		return err
	}
	if output != "short" {
		return printRaw(w, body, output)
	}
	var entries []syncEntry
	if err := json.Unmarshal(body, &entries); err != nil {
		return fmt.Errorf("decoding /debug/syncz: %w", err)
	}
	sort.SliceStable(entries, func(i, j int) bool {
		if a, b := proxyID(entries[i].Proxy), proxyID(entries[j].Proxy); a != b {
			return a < b
		}
		return entries[i].Proxy < entries[j].Proxy
	})
	tw := tabwriter.NewWriter(w, 0, 8, 5, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCLUSTER\tCDS\tLDS\tEDS\tRDS\tECDS\tISTIOD\tVERSION")
	for _, e := range entries {
		row := []string{proxyID(e.Proxy), orDash(e.ClusterID)}
		for _, tc := range typeColumns {
			ts, ok := e.Types[tc.short]
			row = append(row, state(ts, ok))
		}
		version := e.IstioVersion
		if version == "meshd" { // meshd's placeholder, not the proxy's version
			version = ""
		}
		row = append(row, c.addr, orDash(version))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	return tw.Flush()
}

// state is istioctl's status of one type: SYNCED when the last response
// sent was ACKed, STALE when it is not ACKed yet, NOT SENT when nothing
// was sent, NACKED when the proxy rejected it. meshd reports the number
// of NACKs and the last one's message, not which response it rejected: an
// unacknowledged response of a type that was NACKed before is shown
// NACKED (after a NACK meshd sends the type again only with new config).
func state(ts typeStatus, ok bool) string {
	switch {
	case !ok || ts.SentNonce == "":
		return "NOT SENT"
	case ts.SentNonce == ts.AckedNonce:
		return "SYNCED"
	case ts.NackedNonce != "":
		if ts.NackedNonce == ts.SentNonce {
			return "NACKED"
		}
		return "STALE"
	case ts.Nacks > 0:
		return "NACKED"
	default:
		return "STALE"
	}
}

// printRaw prints a JSON document indented (-o json) or as YAML.
func printRaw(w io.Writer, body []byte, output string) error {
	out, err := formatJSON(body, output)
	if err != nil {
		return err
	}
	_, err = w.Write(out)
	return err
}

// orDash returns s, or "-" if it is empty.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
