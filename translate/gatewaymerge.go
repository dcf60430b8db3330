package translate

import (
	"fmt"
	"strconv"

	"github.com/meshd/meshd/internal/model"
)

// boundServer is a Gateway server placed on its listener port.
type boundServer struct {
	*gatewayServer
	// port is the port listened on (after target port translation),
	// routeName the RDS name of an HTTP server ("" for others).
	port      uint32
	routeName string
}

// serverPort is istiod's ServerPort without bind: a listener port and the
// protocol as the server spells it.
type serverPort struct {
	number   uint32
	protocol string
}

// mergedServers are the servers of one serverPort; routeName is the route
// configuration of HTTP ones.
type mergedServers struct {
	servers   []*boundServer
	routeName string
}

// mergedGateway is istiod's MergedGateway: the servers of a router's
// Gateways merged per port. Immutable once built; shared by the router
// scopes with the same Gateways.
type mergedGateway struct {
	// ports lists the serverPorts in the order they were first seen.
	ports   []serverPort
	servers map[serverPort]*mergedServers
	// byRoute holds the servers of each HTTP route configuration.
	byRoute map[string][]*boundServer
	// errs are the servers merging rejected, and rejected the same with
	// the server (for /debug/gatewayz).
	errs     []model.ObjectError
	rejected []rejectedServer
}

// rejectedServer is a server merging left out, and why.
type rejectedServer struct {
	*boundServer
	reason string
}

// gatewayReserved are the router's own ports: the bootstrap's static
// readiness and Prometheus listeners (reserved.go), whose names a server's
// listener would take.
var gatewayReserved = map[uint32]string{statusPort: reservedPorts[statusPort], prometheusPort: reservedPorts[prometheusPort]}

// mergeGateways is istiod's mergeGateways (pilot/pkg/model/gateway.go)
// for servers without bind, over TCP: gws oldest first, each server in
// order, placed on port listen(number). A server whose TLS hosts repeat
// ones already on the port is rejected (istiod's CheckDuplicates: this
// covers TLS passthrough and httpsRedirect servers; plain HTTP servers
// share hosts, their VirtualServices' routes merge). A server on a port
// already holding a plain-text server is merged into it when both are
// HTTP (canMergeProtocols), else rejected; TLS servers share a port with
// TLS servers (one filter chain each, by SNI), and HTTPS servers that
// terminate TLS need distinct route names. Each rejection is reported on
// the Gateway; the other servers are kept.
func mergeGateways(gws []*gatewayConfig, listen func(uint32) uint32) *mergedGateway {
	m := &mergedGateway{servers: map[serverPort]*mergedServers{}, byRoute: map[string][]*boundServer{}}
	ports := map[uint32]bool{}
	plain := map[uint32]serverPort{}
	plainBy := map[uint32]*boundServer{}
	tlsHosts := map[uint32]map[string]*boundServer{}
	for _, gw := range gws {
		for _, gs := range gw.servers {
			port := listen(gs.server.GetPort().GetNumber())
			bs := &boundServer{gatewayServer: gs, port: port, routeName: gatewayRouteName(gs, port)}
			if what, ok := gatewayReserved[port]; ok {
				m.reject(bs, ".port", "port %d is the gateway's %s; this server is ignored", port, what)
				continue
			}
			if gs.server.GetTls() != nil && !m.checkTLSHosts(bs, tlsHosts) {
				continue
			}
			sp := serverPort{number: port, protocol: gs.server.GetPort().GetProtocol()}
			switch cur, hasPlain := plain[port]; {
			case !ports[port]:
				ports[port] = true
				if !gs.isTLSServer() {
					plain[port], plainBy[port] = sp, bs
				}
				m.add(sp, bs)
			case hasPlain:
				first := plainBy[port]
				if !canMergeProtocols(gs.proto, model.ParseProtocol(cur.protocol)) {
					m.reject(bs, ".port", "port %d: this %s server conflicts with %s server %d of Gateway %s on the same port "+
						"(only HTTP servers merge with a plain-text server); this server is ignored",
						port, sp.protocol, cur.protocol, first.index, first.gw.name)
					continue
				}
				ms := m.servers[cur]
				ms.servers = append(ms.servers, bs)
				m.byRoute[bs.routeName] = append(m.byRoute[bs.routeName], bs)
			case !gs.isTLSServer():
				// A plain-text server on a port that holds TLS servers: its
				// own filter chain, without SNI, on the same listener.
				plain[port], plainBy[port] = sp, bs
				m.add(sp, bs)
			default:
				if gs.isHTTPServer() {
					if prev := m.byRoute[bs.routeName]; len(prev) > 0 {
						m.reject(bs, ".port.name", "route configuration %s is already that of server %d of Gateway %s "+
							"(HTTPS servers on one port need distinct port names); this server is ignored",
							bs.routeName, prev[0].index, prev[0].gw.name)
						continue
					}
				}
				m.add(sp, bs)
			}
		}
	}
	return m
}

// add appends bs to the servers of sp, and to its route configuration's
// when it has one.
func (m *mergedGateway) add(sp serverPort, bs *boundServer) {
	ms, ok := m.servers[sp]
	if !ok {
		ms = &mergedServers{routeName: bs.routeName}
		m.servers[sp] = ms
		m.ports = append(m.ports, sp)
	}
	ms.servers = append(ms.servers, bs)
	if bs.isHTTPServer() {
		m.byRoute[bs.routeName] = append(m.byRoute[bs.routeName], bs)
	}
}

// checkTLSHosts is istiod's CheckDuplicates for a server with TLS
// settings: its hosts must not be on the port already; when none is, they
// are recorded.
func (m *mergedGateway) checkTLSHosts(bs *boundServer, known map[uint32]map[string]*boundServer) bool {
	hosts := known[bs.port]
	if hosts == nil {
		hosts = map[string]*boundServer{}
		known[bs.port] = hosts
	}
	for j, h := range bs.server.GetHosts() {
		if prev, ok := hosts[h]; ok {
			m.reject(bs, fmt.Sprintf(".hosts[%d]", j), "host %q on port %d is already served with TLS settings by server %d "+
				"of Gateway %s (SNI filter chains must differ); this server is ignored", h, bs.port, prev.index, prev.gw.name)
			return false
		}
	}
	for _, h := range bs.server.GetHosts() {
		hosts[h] = bs
	}
	return true
}

func (m *mergedGateway) reject(bs *boundServer, field, format string, args ...any) {
	cfg := bs.gw.cfg
	msg := fmt.Sprintf(format, args...)
	m.errs = append(m.errs, model.ObjectError{Kind: cfg.Kind, Namespace: cfg.Namespace, Name: cfg.Name, Source: cfg.Source,
		Field: bs.field(field), Message: msg})
	m.rejected = append(m.rejected, rejectedServer{boundServer: bs, reason: msg})
}

// canMergeProtocols is istiod's: a server of protocol p joins the
// plain-text server of protocol cur when cur is HTTP and p is HTTP too.
func canMergeProtocols(p, cur model.Protocol) bool {
	return (p.IsHTTP() || p == cur) && cur.IsHTTP()
}

// gatewayRouteName is istiod's gatewayRDSRouteName (without bind):
// "http.<listener port>" for HTTP servers,
// "https.<port>.<port name>.<gateway>.<namespace>" for HTTPS servers that
// terminate TLS, "" for the others.
func gatewayRouteName(s *gatewayServer, port uint32) string {
	switch {
	case s.proto.IsHTTP():
		return "http." + strconv.FormatUint(uint64(port), 10)
	case s.proto == model.ProtocolHTTPS && !s.isPassthrough():
		p := s.server.GetPort()
		return fmt.Sprintf("https.%d.%s.%s.%s", p.GetNumber(), p.GetName(), s.gw.cfg.Name, s.gw.cfg.Namespace)
	}
	return ""
}
