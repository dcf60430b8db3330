package translate

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/meshd/meshd/internal/model"
)

// Well-known cluster names shared with istiod.
const (
	BlackHoleCluster   = "BlackHoleCluster"
	PassthroughCluster = "PassthroughCluster"
	// VirtualOutboundListener is the listener iptables redirects outbound traffic to.
	VirtualOutboundListener = "virtualOutbound"
	virtualOutboundPort     = 15001
)

// ClusterName returns istiod's outbound cluster name: outbound|<port>|<subset>|<host>.
func ClusterName(port uint32, subset, host string) string {
	return fmt.Sprintf("outbound|%d|%s|%s", port, subset, host)
}

// ParseClusterName splits an outbound cluster name into port, subset and host.
func ParseClusterName(name string) (port uint32, subset, host string, ok bool) {
	rest, found := strings.CutPrefix(name, "outbound|")
	if !found {
		return 0, "", "", false
	}
	num, rest, found := strings.Cut(rest, "|")
	if !found {
		return 0, "", "", false
	}
	subset, host, found = strings.Cut(rest, "|")
	if !found || strings.Contains(host, "|") {
		return 0, "", "", false
	}
	p, err := strconv.ParseUint(num, 10, 32)
	if err != nil {
		return 0, "", "", false
	}
	return uint32(p), subset, host, true
}

// OutboundListenerName returns a sidecar's per-port listener name, 0.0.0.0_<port>.
func OutboundListenerName(addr string, port uint32) string {
	return fmt.Sprintf("%s_%d", addr, port)
}

// RouteName returns a sidecar's per-port route configuration name, "<port>".
func RouteName(port uint32) string { return strconv.FormatUint(uint64(port), 10) }

// hostNames returns the names a client in namespace ns may use for svc, most
// specific first: FQDN, name.ns.svc, name.ns, and name in its own namespace.
func hostNames(svc *model.Service, ns string) []string {
	out := []string{svc.Hostname}
	if svc.Origin != model.KindService {
		return out
	}
	suffix := "." + svc.Namespace + ".svc."
	if i := strings.Index(svc.Hostname, suffix); i > 0 {
		out = append(out, svc.Hostname[:i+len(suffix)-1], svc.Hostname[:i]+"."+svc.Namespace)
		if ns == svc.Namespace {
			out = append(out, svc.Name)
		}
	}
	return out
}

// resolveHost expands a short host name used in a config object of namespace
// ns ("reviews", "reviews.shop") to a FQDN, as istiod does. FQDNs, wildcards
// and names of other forms are returned unchanged.
func resolveHost(host, ns, domain string) string {
	if strings.Contains(host, "*") {
		return host
	}
	switch strings.Count(host, ".") {
	case 0:
		return host + "." + ns + ".svc." + domain
	case 1:
		return host + ".svc." + domain
	}
	return host
}
