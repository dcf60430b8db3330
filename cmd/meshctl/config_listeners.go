package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
)

// listenersHelp is the help of proxy-config listeners.
const listenersHelp = `proxy-config listeners: ADDRESSES, PORT, MATCH (the filter chain match) and
DESTINATION (the route configuration or cluster) per filter chain, sorted by
port, address and type; with --verbose=false, ADDRESSES, PORT, TYPE
(HTTP, TCP, HTTP+TCP) per listener.
`

// Filter names istioctl classifies listeners by.
const (
	httpFilter = "envoy.filters.network.http_connection_manager"
	tcpFilter  = "envoy.filters.network.tcp_proxy"
)

// listenerFilter is istioctl's listener filter.
type listenerFilter struct {
	address, typ string
	port         uint
	verbose      bool
}

// verify reports whether the listener passes the filter.
func (f listenerFilter) verify(l *listenerv3.Listener) bool {
	if f.address != "" {
		found := false
		for _, a := range listenerAddresses(l) {
			found = found || strings.EqualFold(a, f.address)
		}
		if !found {
			return false
		}
	}
	if f.port != 0 && uint(listenerPort(l)) != f.port {
		return false
	}
	return f.typ == "" || strings.EqualFold(listenerType(l), f.typ)
}

// listenerFlags registers the listeners filters and returns its printer.
func listenerFlags(fs *flag.FlagSet) printer {
	var f listenerFilter
	fs.StringVar(&f.address, "address", "", "only listeners with this address")
	fs.UintVar(&f.port, "port", 0, "only listeners of this port")
	fs.StringVar(&f.typ, "type", "", "only listeners of this type (HTTP, TCP, HTTP+TCP)")
	fs.BoolVar(&f.verbose, "verbose", true, "a row per filter chain with its match and destination")
	return func(w io.Writer, src source, output string) error {
		d, err := loadDump(src)
		if err != nil {
			return err
		}
		if len(d.listeners) == 0 {
			return fmt.Errorf("no listeners found")
		}
		var list []*listenerv3.Listener
		for _, l := range d.listeners {
			if f.verify(l) {
				list = append(list, l)
			}
		}
		if output != "short" {
			return printProtos(w, list, output)
		}
		return printListeners(w, list, f.verbose)
	}
}

// printListeners prints istioctl's listeners table.
func printListeners(w io.Writer, ls []*listenerv3.Listener, verbose bool) error {
	ls = append([]*listenerv3.Listener(nil), ls...)
	sort.SliceStable(ls, func(i, j int) bool {
		a, b := ls[i], ls[j]
		if listenerPort(a) != listenerPort(b) {
			return listenerPort(a) < listenerPort(b)
		}
		if listenerAddress(a) != listenerAddress(b) {
			return listenerAddress(a) < listenerAddress(b)
		}
		return listenerType(a) < listenerType(b)
	})
	tw := tabwriter.NewWriter(w, 0, 8, 1, ' ', 0)
	if verbose {
		fmt.Fprintln(tw, "ADDRESSES\tPORT\tMATCH\tDESTINATION")
	} else {
		fmt.Fprintln(tw, "ADDRESSES\tPORT\tTYPE")
	}
	for _, l := range ls {
		addrs := strings.Join(listenerAddresses(l), ",")
		if !verbose {
			fmt.Fprintf(tw, "%s\t%d\t%s\n", addrs, listenerPort(l), listenerType(l))
			continue
		}
		type row struct{ match, dest string }
		var rows []row
		for _, fc := range filterChains(l) {
			rows = append(rows, row{chainMatch(fc.GetFilterChainMatch()), chainDestination(fc.GetFilters())})
		}
		sort.SliceStable(rows, func(i, j int) bool { return rows[i].dest > rows[j].dest })
		for _, r := range rows {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\n", addrs, listenerPort(l), r.match, r.dest)
		}
	}
	return tw.Flush()
}

// filterChains returns the listener's filter chains and its default chain.
func filterChains(l *listenerv3.Listener) []*listenerv3.FilterChain {
	out := append([]*listenerv3.FilterChain(nil), l.GetFilterChains()...)
	if l.GetDefaultFilterChain() != nil {
		out = append(out, l.GetDefaultFilterChain())
	}
	return out
}

// listenerType classifies a listener as HTTP, TCP, HTTP+TCP or UNKNOWN by
// its filters (a TCP proxy to the BlackHoleCluster does not count).
func listenerType(l *listenerv3.Listener) string {
	var nHTTP, nTCP int
	for _, fc := range filterChains(l) {
		for _, f := range fc.GetFilters() {
			switch {
			case f.GetName() == httpFilter:
				nHTTP++
			case f.GetName() == tcpFilter && !strings.Contains(string(f.GetTypedConfig().GetValue()), "BlackHoleCluster"):
				nTCP++
			}
		}
	}
	switch {
	case nHTTP > 0 && nTCP == 0:
		return "HTTP"
	case nHTTP > 0:
		return "HTTP+TCP"
	case nTCP > 0:
		return "TCP"
	}
	return "UNKNOWN"
}

// listenerAddress is the listener's address (or pipe path).
func listenerAddress(l *listenerv3.Listener) string {
	if sa := l.GetAddress().GetSocketAddress(); sa != nil {
		return sa.GetAddress()
	}
	return l.GetAddress().GetPipe().GetPath()
}

// listenerAddresses is the address then the additional addresses.
func listenerAddresses(l *listenerv3.Listener) []string {
	out := []string{listenerAddress(l)}
	for _, a := range l.GetAdditionalAddresses() {
		out = append(out, a.GetAddress().GetSocketAddress().GetAddress())
	}
	return out
}

// listenerPort is the listener's port (0 for a pipe).
func listenerPort(l *listenerv3.Listener) uint32 {
	return l.GetAddress().GetSocketAddress().GetPortValue()
}
