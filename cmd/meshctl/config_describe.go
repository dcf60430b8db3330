package main

import (
	"fmt"
	"slices"
	"strings"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
)

// istioctl's descriptions of the ALPN lists Istio matches on.
var alpnDescriptions = []struct {
	desc   string
	protos []string
}{
	{"App: HTTP TLS", []string{"http/1.0", "http/1.1", "h2c", "istio-http/1.0", "istio-http/1.1", "istio-h2"}},
	{"App: Istio HTTP Plain", []string{"istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"}},
	{"App: TCP TLS", []string{"istio-peer-exchange", "istio"}},
	{"App: HTTP", []string{"http/1.0", "http/1.1", "h2c"}},
}

// chainMatch is istioctl's MATCH of a filter chain: SNI, transport,
// application protocols and destination addresses, or ALL.
func chainMatch(m *listenerv3.FilterChainMatch) string {
	var d []string
	if len(m.GetServerNames()) > 0 {
		d = append(d, "SNI: "+strings.Join(m.GetServerNames(), ","))
	}
	if m.GetTransportProtocol() != "" {
		d = append(d, "Trans: "+m.GetTransportProtocol())
	}
	if alpn := m.GetApplicationProtocols(); len(alpn) > 0 {
		desc := "App: " + strings.Join(alpn, ",")
		for _, a := range alpnDescriptions {
			if slices.Equal(a.protos, alpn) {
				desc = a.desc
			}
		}
		d = append(d, desc)
	}
	port := ""
	if m.GetDestinationPort() != nil {
		port = fmt.Sprintf(":%d", m.GetDestinationPort().GetValue())
	}
	if len(m.GetPrefixRanges()) > 0 {
		var pf []string
		for _, p := range m.GetPrefixRanges() {
			pf = append(pf, fmt.Sprintf("%s/%d", p.GetAddressPrefix(), p.GetPrefixLen().GetValue()))
		}
		d = append(d, "Addr: "+strings.Join(pf, ",")+port)
	} else if port != "" {
		d = append(d, "Addr: *"+port)
	}
	if len(d) == 0 {
		return "ALL"
	}
	return strings.Join(d, "; ")
}

// chainDestination is istioctl's DESTINATION of a filter chain: the
// route configuration of its HTTP connection manager, or its TCP proxy's
// cluster.
func chainDestination(filters []*listenerv3.Filter) string {
	for _, f := range filters {
		switch f.GetName() {
		case httpFilter:
			var hcm hcmv3.HttpConnectionManager
			if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
				return err.Error()
			}
			if rc := hcm.GetRouteConfig(); rc != nil {
				return describeRouteConfig(rc)
			}
			if name := hcm.GetRds().GetRouteConfigName(); name != "" {
				return "Route: " + name
			}
			return "HTTP"
		case tcpFilter:
			if strings.Contains(string(f.GetTypedConfig().GetValue()), "BlackHoleCluster") {
				continue
			}
			var tcp tcpv3.TcpProxy
			if err := f.GetTypedConfig().UnmarshalTo(&tcp); err != nil {
				return err.Error()
			}
			return describeCluster(tcp.GetCluster())
		}
	}
	return "Non-HTTP/Non-TCP"
}

// describeCluster is "Cluster: NAME", or NAME alone for Istio's special
// clusters (PassthroughCluster, InboundPassthroughCluster...).
func describeCluster(name string) string {
	if strings.Contains(name, "Cluster") {
		return name
	}
	return "Cluster: " + name
}

// describeRouteConfig describes an inline route configuration: its one
// catch-all cluster, else its virtual hosts' domains and matches.
func describeRouteConfig(rc *routev3.RouteConfiguration) string {
	if vhs := rc.GetVirtualHosts(); len(vhs) == 1 && slices.Equal(vhs[0].GetDomains(), []string{"*"}) &&
		len(vhs[0].GetRoutes()) == 1 && vhs[0].GetRoutes()[0].GetMatch().GetPrefix() == "/" {
		if c := vhs[0].GetRoutes()[0].GetRoute().GetCluster(); c != "" {
			return describeCluster(c)
		}
	}
	var vhosts []string
	for _, vh := range rc.GetVirtualHosts() {
		var matches []string
		for _, r := range vh.GetRoutes() {
			matches = append(matches, describeMatch(r.GetMatch()))
		}
		routes := strings.Join(matches, ", ")
		if d := vh.GetDomains(); len(d) == 1 && d[0] == "*" {
			vhosts = append(vhosts, routes)
		} else {
			vhosts = append(vhosts, strings.Join(d, "/")+" "+routes)
		}
	}
	return "Inline Route: " + strings.Join(vhosts, "; ")
}

// describeMatch is istioctl's MATCH of a route: its path conditions
// (headers are not shown).
func describeMatch(m *routev3.RouteMatch) string {
	var c []string
	if m.GetPrefix() != "" {
		c = append(c, m.GetPrefix()+"*")
	}
	if m.GetPathSeparatedPrefix() != "" {
		c = append(c, "PathPrefix:"+m.GetPathSeparatedPrefix())
	}
	if m.GetPath() != "" {
		c = append(c, m.GetPath())
	}
	if m.GetSafeRegex() != nil {
		c = append(c, "regex "+m.GetSafeRegex().GetRegex())
	}
	return strings.Join(c, " ")
}
