package translate

import (
	"fmt"
	"sort"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshd/meshd/internal/model"
)

// Inbound names shared with istiod.
const (
	// VirtualInboundListener is the listener iptables redirects inbound traffic to.
	VirtualInboundListener = "virtualInbound"
	virtualInboundPort     = 15006
	// InboundPassthroughCluster forwards inbound traffic to ports no service
	// declares, from 127.0.0.6 so that it is not captured again.
	InboundPassthroughCluster = "InboundPassthroughCluster"
	originalDstFilterName     = "envoy.filters.listener.original_dst"
	inboundPassthroughBindIP  = "127.0.0.6"
)

// InboundClusterName returns istiod's inbound cluster name, inbound|<port>||,
// where port is the workload (target) port.
func InboundClusterName(port uint32) string { return fmt.Sprintf("inbound|%d||", port) }

// inboundPort is one port the scope's workload serves for a service, with
// the PeerAuthentication mode in force on it (peerauthn.go).
type inboundPort struct {
	target   uint32
	protocol model.Protocol
	mode     mtlsMode
}

// inboundPorts returns the workload ports of the services the scope's
// workload backs (services of its namespace whose selector matches its
// labels), one per target port (the first service port wins), sorted;
// the proxy's own ports (reservedPorts, reserved.go) are left out, as
// istiod's CanBindToPort leaves them out of the inbound chains (a chain
// for 15006 would also repeat the blackhole chain's match). Each port's
// mode is policy's for it.
func (b *builder) inboundPorts(policy peerPolicy) []inboundPort {
	labels := b.scope.LabelMap()
	if len(labels) == 0 {
		return nil
	}
	seen := map[uint32]bool{}
	var out []inboundPort
	for _, svc := range b.x.byNamespace[b.scope.Namespace] {
		if len(svc.Selector) == 0 || !labelsMatch(svc.Selector, labels) {
			continue
		}
		for _, p := range svc.Ports {
			t := b.targetPort(svc, p, labels)
			if _, reserved := reservedPorts[t]; !seen[t] && !reserved {
				seen[t] = true
				out = append(out, inboundPort{target: t, protocol: p.Protocol, mode: policy.portMode(t)})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].target < out[j].target })
	return out
}

// portsKey is the part of an outputKey naming a workload's inbound ports
// and their modes.
func portsKey(ports []inboundPort) string {
	var k strings.Builder
	for _, p := range ports {
		fmt.Fprintf(&k, "%d/%s/%s,", p.target, p.protocol, p.mode)
	}
	return k.String()
}

// targetPort is the port the scope's workload listens on for p: the port of
// an endpoint of the workload (EndpointSlices carry resolved numbers, also
// for named targetPorts), else the numeric targetPort, else the port itself.
func (b *builder) targetPort(svc *model.Service, p model.Port, labels map[string]string) uint32 {
	eps := b.x.snap.Endpoints(svc.Hostname, svc.Namespace)
	for i := range eps {
		if ep := &eps[i]; sameLabels(ep.Labels, labels) {
			if n, ok := endpointPort(ep, p); ok {
				return n
			}
		}
	}
	if p.TargetPort != 0 {
		return p.TargetPort
	}
	return p.Port
}

// inboundOutput returns a sidecar's virtualInbound listener and inbound
// clusters: InboundPassthroughCluster always (istiod sends both to every
// sidecar; with iptables redirection a pod without them drops every
// inbound connection), and an inbound cluster per port its workload
// serves.
func (b *builder) inboundOutput(in inboundSide) ([]*listener.Listener, []*cluster.Cluster) {
	passthrough := b.x.shared.get(inboundPassthroughKey{}, func() any { return inboundPassthroughCluster() })
	clusters := []*cluster.Cluster{passthrough.(*cluster.Cluster)}
	for _, p := range in.ports {
		clusters = append(clusters, inboundCluster(p))
	}
	l := virtualInbound(in)
	newAuthzFilters(b.x.authzEnv(), in.jwt, in.authz).apply(l)
	return []*listener.Listener{l}, clusters
}

// virtualInbound accepts all redirected inbound traffic: istiod's
// passthrough chains (inbound_passthrough.go), then the chains of each
// workload port (HTTP ports through an HTTP connection manager with an
// inline route, others through tcp_proxy), plaintext, Istio mTLS
// (inbound_mtls.go) or both as the port's PeerAuthentication mode says
// (peerauthn_inbound.go). The listener filters are the ones those chains
// need, on the ports that need them, as istiod's populateListenerFilters.
// As istiod's, it waits for the inspectors without a timeout (MeshConfig
// protocolDetectionTimeout, 0s by default), and with one set would pick a
// filter chain when it expires rather than close the connection.
func virtualInbound(in inboundSide) *listener.Listener {
	chains := inboundPassthroughChains(in.passthrough, in.agent)
	for _, p := range in.ports {
		chains = append(chains, inboundPortChains(p, in.agent)...)
	}
	return &listener.Listener{
		Name:                             VirtualInboundListener,
		Address:                          socketAddress("0.0.0.0", virtualInboundPort),
		TrafficDirection:                 core.TrafficDirection_INBOUND,
		ListenerFilters:                  inboundListenerFilters(chains),
		ListenerFiltersTimeout:           durationpb.New(0),
		ContinueOnListenerFiltersTimeout: true,
		FilterChains:                     chains,
	}
}

// inboundPlaintextChain serves a workload port's plaintext (and, without
// an mTLS chain before it, any) traffic.
func inboundPlaintextChain(p inboundPort) *listener.FilterChain {
	return &listener.FilterChain{
		Name:             OutboundListenerName("0.0.0.0", p.target),
		FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(p.target)},
		Filters:          []*listener.Filter{inboundPortFilter(p)},
	}
}

// inboundPortFilter is the network filter of a workload port's chains: an
// HTTP connection manager for HTTP ports, else tcp_proxy, to its inbound
// cluster.
func inboundPortFilter(p inboundPort) *listener.Filter {
	name := InboundClusterName(p.target)
	if p.protocol.IsHTTP() {
		return hcmFilter(inboundPortHCM(p))
	}
	return tcpFilter(name, name)
}

// inboundPortHCM is the connection manager of an HTTP workload port.
func inboundPortHCM(p inboundPort) *hcm.HttpConnectionManager {
	name := InboundClusterName(p.target)
	return inboundHCM(fmt.Sprintf("inbound_0.0.0.0_%d", p.target), fmt.Sprintf("inbound|http|%d", p.target), name, name)
}

// hcmFilter is the network filter running m.
func hcmFilter(m *hcm.HttpConnectionManager) *listener.Filter {
	return &listener.Filter{Name: hcmFilterName, ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}}
}

// inboundHCM routes everything to cluster through an inline route
// configuration (named routeName, one virtual host vhost for "*"), as
// istiod's inbound HCM.
func inboundHCM(statPrefix, vhost, routeName, cluster string) *hcm.HttpConnectionManager {
	return &hcm.HttpConnectionManager{
		StatPrefix: statPrefix,
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
			Name: routeName,
			VirtualHosts: []*route.VirtualHost{{
				Name:    vhost,
				Domains: []string{"*"},
				Routes:  []*route.Route{defaultRoute(cluster)},
			}},
			ValidateClusters: falseValue(),
		}},
		HttpFilters: []*hcm.HttpFilter{routerFilter()},
	}
}

// inboundCluster sends to the workload on 127.0.0.1:<port>. istiod uses an
// ORIGINAL_DST cluster bound to 127.0.0.6 (reaching apps bound to the pod
// IP only); meshd uses a STATIC localhost endpoint, which is fully
// described by the config (no dependence on iptables' original
// destination) and reaches every app listening on 0.0.0.0 or localhost.
func inboundCluster(p inboundPort) *cluster.Cluster {
	name := InboundClusterName(p.target)
	c := &cluster.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(connectTimeout),
		LoadAssignment: &endpoint.ClusterLoadAssignment{ClusterName: name, Endpoints: []*endpoint.LocalityLbEndpoints{{
			LbEndpoints: []*endpoint.LbEndpoint{{HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: socketAddress("127.0.0.1", p.target),
			}}}},
		}}},
		CircuitBreakers: &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{defaultThresholds()}},
	}
	if p.protocol == model.ProtocolHTTP2 || p.protocol == model.ProtocolGRPC {
		c.TypedExtensionProtocolOptions = http2Options()
	}
	return c
}
