package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// detailTypes are the types the per-proxy view shows, in this order;
// others meshd reports follow, sorted.
var detailTypes = []string{"cds", "lds", "eds", "rds", "sds", "ecds"}

// proxyDetail prints `meshctl proxy-status PROXY`: every stream of the
// proxy with, per type, the version meshd would send against the version
// the proxy ACKed.
func proxyDetail(w io.Writer, c *client, name, output string) error {
	body, err := c.get("/debug/adsz")
	if err != nil {
		return err
	}
	var ads struct {
		Clients []json.RawMessage `json:"clients"`
	}
	if err := json.Unmarshal(body, &ads); err != nil {
		return fmt.Errorf("decoding /debug/adsz: %w", err)
	}
	var found []adsClient
	var raw []json.RawMessage
	var all []string
	for _, r := range ads.Clients {
		var a adsClient
		if err := json.Unmarshal(r, &a); err != nil {
			return fmt.Errorf("decoding /debug/adsz: %w", err)
		}
		all = append(all, a.Proxy)
		if matches(name, a.Proxy) {
			found, raw = append(found, a), append(raw, r)
		}
	}
	if len(found) == 0 {
		return proxyNotFound(name, c.addr, all)
	}
	if output != "short" {
		b, err := json.Marshal(raw)
		if err != nil {
			return err
		}
		return printRaw(w, b, output)
	}
	for i, a := range found {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if err := printStream(w, c.addr, a); err != nil {
			return err
		}
	}
	return nil
}

// printStream prints one stream of a proxy: who it is, the per-type table
// and a line per type comparing what meshd would send with what was ACKed.
func printStream(w io.Writer, addr string, a adsClient) error {
	proto := "state-of-the-world ADS"
	if a.Delta {
		proto = "delta (incremental) ADS"
	}
	fmt.Fprintf(w, "Proxy:     %s\nNode ID:   %s\nScope:     %s\nStream:    %s to meshd at %s\n",
		proxyID(a.Proxy), a.Proxy, a.Scope, proto, addr)
	if a.Identity != "" {
		fmt.Fprintf(w, "Identity:  %s\n", a.Identity)
	}
	fmt.Fprintln(w)
	types := append([]string(nil), detailTypes...)
	var extra []string
	for t := range a.Types {
		if !slices.Contains(detailTypes, t) {
			extra = append(extra, t)
		}
	}
	sort.Strings(extra)
	types = append(types, extra...)

	tw := tabwriter.NewWriter(w, 0, 8, 5, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tSTATUS\tMESHD WOULD SEND\tPROXY ACKED\tRESOURCES\tNACKS")
	for _, t := range types {
		ts, ok := a.Types[t]
		st := state(ts, ok)
		if st == "NOT SENT" {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\n", strings.ToUpper(t), st)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\n", strings.ToUpper(t), st, ts.SentVersion, orDash(ts.AckedVersion),
			ts.SentResources, ts.Nacks)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, t := range types {
		ts, ok := a.Types[t]
		fmt.Fprintf(w, "%-5s %s\n", strings.ToUpper(t)+":", compare(ts, ok))
		if ok && ts.LastNack != "" {
			fmt.Fprintf(w, "      last NACK (%d in all): %s\n", ts.Nacks, ts.LastNack)
		}
	}
	return nil
}

// compare says how what meshd would send a proxy of one type compares
// with what the proxy ACKed.
func compare(ts typeStatus, ok bool) string {
	switch state(ts, ok) {
	case "NOT SENT":
		return "not sent (the proxy has not subscribed to it)"
	case "SYNCED":
		return "in sync: the proxy ACKed version " + ts.AckedVersion + ", the one meshd would send now"
	}
	has := "has nothing ACKed"
	if ts.AckedVersion != "" {
		has = "has version " + ts.AckedVersion
	}
	why := "not ACKed yet"
	if state(ts, ok) == "NACKED" {
		why = "rejected"
	}
	return "differs: meshd would send version " + ts.SentVersion + " (" + why + "), the proxy " + has
}
