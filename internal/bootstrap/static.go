package bootstrap

import (
	"fmt"
	"net"
	"strconv"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Names of the static clusters besides xds-grpc.
const (
	// PrometheusClusterName is Istio's cluster for /stats/prometheus: the admin.
	PrometheusClusterName = "prometheus_stats"
	// AdminClusterName is the admin again, for /healthz/ready. Istio routes
	// readiness to its "agent" cluster (pilot-agent); there is no agent here.
	AdminClusterName = "envoy_admin"
)

// httpProtocolOptionsKey is the typed_extension_protocol_options key of
// envoy.extensions.upstreams.http.v3.HttpProtocolOptions.
const httpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// xDS connection settings: meshd's server keepalive defaults (ping after 30s
// idle, give up 10s later), and Istio's connect timeout, TCP keepalive and
// circuit-breaker thresholds for xds-grpc.
const (
	xdsConnectTimeout    = time.Second
	xdsKeepaliveInterval = 30 * time.Second
	xdsKeepaliveTimeout  = 10 * time.Second
	xdsTCPKeepaliveTime  = 300 // seconds
	xdsCircuitBreakerMax = 100000
	adminConnectTimeout  = 250 * time.Millisecond
)

// staticResources returns the clusters and listeners Envoy has before it
// talks to meshd.
func (o *Options) staticResources() (*bootstrapv3.Bootstrap_StaticResources, error) {
	xds, err := o.xdsCluster()
	if err != nil {
		return nil, err
	}
	stats, err := o.statsListener()
	if err != nil {
		return nil, err
	}
	ready, err := o.readinessListener()
	if err != nil {
		return nil, err
	}
	admin := o.adminUpstream()
	return &bootstrapv3.Bootstrap_StaticResources{
		Clusters: []*cluster.Cluster{
			staticCluster(PrometheusClusterName, admin, o.AdminPort),
			staticCluster(AdminClusterName, admin, o.AdminPort),
			xds,
		},
		Listeners: []*listener.Listener{stats, ready},
	}, nil
}

// xdsCluster is the HTTP/2 cluster to meshd: STATIC for an IP, STRICT_DNS
// (re-resolved every 5s, Envoy's default) for a name; over TLS with --tls.
func (o *Options) xdsCluster() (*cluster.Cluster, error) {
	host, portText, err := net.SplitHostPort(o.XDSAddress)
	if err != nil {
		return nil, fmt.Errorf("--xds-address %q: %w", o.XDSAddress, err)
	}
	port, err := strconv.ParseUint(portText, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("--xds-address %q: bad port: %w", o.XDSAddress, err)
	}
	h2, err := pack(http2Options())
	if err != nil {
		return nil, err
	}
	socket, err := o.xdsTransportSocket()
	if err != nil {
		return nil, err
	}
	c := staticCluster(XDSClusterName, host, uint32(port))
	c.TransportSocket = socket
	c.ConnectTimeout = durationOf(xdsConnectTimeout)
	c.TypedExtensionProtocolOptions = map[string]*anypb.Any{httpProtocolOptionsKey: h2}
	c.UpstreamConnectionOptions = &cluster.UpstreamConnectionOptions{
		TcpKeepalive: &core.TcpKeepalive{KeepaliveTime: wrapperspb.UInt32(xdsTCPKeepaliveTime)},
	}
	c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{
		circuitBreaker(core.RoutingPriority_DEFAULT), circuitBreaker(core.RoutingPriority_HIGH),
	}}
	if net.ParseIP(host) == nil {
		c.ClusterDiscoveryType = &cluster.Cluster_Type{Type: cluster.Cluster_STRICT_DNS}
		c.DnsLookupFamily = o.dnsLookupFamily()
	}
	return c, nil
}

// circuitBreaker is Istio's xds-grpc threshold: high enough never to trip.
func circuitBreaker(p core.RoutingPriority) *cluster.CircuitBreakers_Thresholds {
	return &cluster.CircuitBreakers_Thresholds{
		Priority:           p,
		MaxConnections:     wrapperspb.UInt32(xdsCircuitBreakerMax),
		MaxPendingRequests: wrapperspb.UInt32(xdsCircuitBreakerMax),
		MaxRequests:        wrapperspb.UInt32(xdsCircuitBreakerMax),
	}
}

// staticCluster is a STATIC cluster of one endpoint.
func staticCluster(name, host string, port uint32) *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout:       durationOf(adminConnectTimeout),
		LbPolicy:             cluster.Cluster_ROUND_ROBIN,
		LoadAssignment: &endpoint.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpoint.LocalityLbEndpoints{{LbEndpoints: []*endpoint.LbEndpoint{{
				HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: socketAddress(host, port)}},
			}}}},
		},
	}
}

// socketAddress is a TCP address.
func socketAddress(host string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Protocol:      core.SocketAddress_TCP,
		Address:       host,
		PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}

// adminUpstream is the address the static clusters use to reach the admin:
// the admin address, or loopback of its family when the admin listens on
// every interface.
func (o *Options) adminUpstream() string {
	ip := net.ParseIP(o.AdminAddress)
	switch {
	case ip == nil || !ip.IsUnspecified():
		return o.AdminAddress
	case ip.To4() != nil:
		return "127.0.0.1"
	default:
		return "::1"
	}
}

// ipv6First reports whether the pod IP (the first) is IPv6.
func (o *Options) ipv6First() bool {
	return len(o.IPs) > 0 && net.ParseIP(o.IPs[0]).To4() == nil
}

// wildcard is the listen-on-all address of the pod IP's family, as Istio.
func (o *Options) wildcard() string {
	if o.ipv6First() {
		return "::"
	}
	return "0.0.0.0"
}

// dnsLookupFamily follows Istio: only IPv4 when every proxy IP is IPv4,
// only IPv6 when every one is IPv6, both otherwise.
func (o *Options) dnsLookupFamily() cluster.Cluster_DnsLookupFamily {
	v4, v6 := 0, 0
	for _, s := range o.IPs {
		if net.ParseIP(s).To4() != nil {
			v4++
		} else {
			v6++
		}
	}
	switch {
	case v6 == 0:
		return cluster.Cluster_V4_ONLY
	case v4 == 0:
		return cluster.Cluster_V6_ONLY
	default:
		return cluster.Cluster_ALL
	}
}
