package translate

import "github.com/meshd/meshd/internal/model"

// The sidecar's own ports, which istiod 1.29 keeps service listeners off
// (pilot/pkg/model/context.go, conflictWithReservedListener, reached
// through Proxy.CanBindToPort from buildSidecarOutboundListeners in
// pilot/pkg/networking/core/listener.go and buildInboundListeners in
// listener_inbound.go):
//   - the bootstrap's static listeners: the readiness (status) port and
//     the Prometheus port, the proxy's ENVOY_STATUS_PORT and
//     ENVOY_PROMETHEUS_PORT, 15021 and 15090 by default (pilot-agent's and
//     meshd bootstrap's);
//   - the virtual listeners: virtualOutbound and virtualInbound,
//     MeshConfig proxyListenPort and proxyInboundListenPort, 15001 and 15006.
//
// Envoy's admin (15000, on loopback) and pilot-agent's 15020 are not
// reserved, by istiod either: port listeners do not bind, and their names
// do not collide. meshd reserves the default ports whatever a proxy's
// metadata says: scopes do not carry ENVOY_STATUS_PORT (a proxy
// bootstrapped with other --stats-port or --readiness-port values keeps
// 15021 and 15090 reserved).
const (
	statusPort     = 15021
	prometheusPort = 15090
)

// reservedPorts names the listener holding each reserved port.
var reservedPorts = map[uint32]string{
	virtualOutboundPort: "virtualOutbound listener, where iptables redirects outbound traffic",
	virtualInboundPort:  "virtualInbound listener, where iptables redirects inbound traffic",
	statusPort:          "readiness listener, a static listener of the bootstrap",
	prometheusPort:      "Prometheus listener, a static listener of the bootstrap",
}

// wildcardOutbound reports whether a sidecar's outbound listener for port
// p of svc is the wildcard 0.0.0.0_<port> one: HTTP ports always, TLS and
// HTTPS ports of a service without IPv4 VIP (sniListeners). The others
// listen on <vip>_<port> (tcpListener), which no reserved listener holds.
func wildcardOutbound(svc *model.Service, p model.Port) bool {
	if p.Protocol.IsHTTP() {
		return true
	}
	noVIP := len(svc.VIPs) == 0 || !isIPv4(svc.VIPs[0])
	return noVIP && (p.Protocol == model.ProtocolTLS || p.Protocol == model.ProtocolHTTPS)
}

// outboundReserved reports whether a sidecar gets no outbound listener for
// port p of svc: a wildcard listener on a reserved port, which Envoy would
// ignore without a NACK (the name is a static listener's, 15021 and 15090)
// or which would take the traffic redirected to 15001 or 15006. As
// istiod's conflictWithReservedListener for HTTP ports; for the TLS
// listener of a service without VIP istiod's check does not apply (it
// runs before the address is known, and only HTTP ports are tested on
// the wildcard) and it emits a listener Envoy ignores: meshd emits none.
// The service's clusters are kept, as istiod keeps them.
func outboundReserved(svc *model.Service, p model.Port) bool {
	_, reserved := reservedPorts[p.Port]
	return reserved && wildcardOutbound(svc, p)
}

// reportReservedPorts reports each port of svc that gets no outbound
// listener on sidecars (outboundReserved). istiod logs this as a warning
// ("skipping sidecar port %d ... as it conflicts with static listener")
// for every proxy on every push; meshd reports it once per service.
func (x *Index) reportReservedPorts(svc *model.Service) {
	for _, p := range svc.Ports {
		if !outboundReserved(svc, p) {
			continue
		}
		x.report(svc.Origin, svc.Namespace, svc.Name, "", "spec.ports",
			"port %d (%s) is the port of the sidecar's %s: sidecars get no outbound listener %s and no routes for it "+
				"(its cluster %s is kept); move the service to another port",
			p.Port, p.Protocol, reservedPorts[p.Port], OutboundListenerName("0.0.0.0", p.Port), ClusterName(p.Port, "", svc.Hostname))
	}
}
