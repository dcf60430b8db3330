package translate

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshd/meshd/internal/model"
)

// Filter names as Envoy registers them.
const (
	hcmFilterName    = "envoy.filters.network.http_connection_manager"
	tcpFilterName    = "envoy.filters.network.tcp_proxy"
	routerFilterName = "envoy.filters.http.router"
)

// sidecarListeners builds istiod's outbound listeners: one 0.0.0.0_<port>
// HTTP listener per HTTP port, one <vip>_<port> TCP listener per TCP service
// port with a VIP, and the virtualOutbound listener iptables redirects to.
// Port listeners do not bind: traffic reaches them through virtualOutbound.
// httpPorts holds no reserved port (reserved.go).
func (b *builder) sidecarListeners(httpPorts []uint32, services []*model.Service) []*listener.Listener {
	out := make([]*listener.Listener, 0, len(httpPorts)+1)
	for _, port := range httpPorts {
		name := OutboundListenerName("0.0.0.0", port)
		out = append(out, outboundListener(name, "0.0.0.0", port, httpFilter("outbound_"+name, RouteName(port))))
	}
	for _, svc := range services {
		for _, p := range svc.Ports {
			if p.Protocol.IsHTTP() || len(svc.VIPs) == 0 || !isIPv4(svc.VIPs[0]) {
				continue
			}
			out = append(out, b.tcpListener(svc, p, svc.VIPs[0]))
		}
	}
	out = append(out, b.sniListeners(services, httpPorts)...)
	return append(out, b.virtualOutbound())
}

func outboundListener(name, addr string, port uint32, filter *listener.Filter) *listener.Listener {
	return &listener.Listener{
		Name:             name,
		Address:          socketAddress(addr, port),
		BindToPort:       wrapperspb.Bool(false),
		TrafficDirection: core.TrafficDirection_OUTBOUND,
		FilterChains:     []*listener.FilterChain{{Filters: []*listener.Filter{filter}}},
	}
}

// virtualOutbound accepts all redirected outbound traffic and hands it to the
// listener of its original destination; unmatched traffic passes through
// (ALLOW_ANY) or goes to BlackHoleCluster (REGISTRY_ONLY).
func (b *builder) virtualOutbound() *listener.Listener {
	def := b.outboundDefaultCluster()
	return &listener.Listener{
		Name:             VirtualOutboundListener,
		Address:          socketAddress("0.0.0.0", virtualOutboundPort),
		UseOriginalDst:   wrapperspb.Bool(true),
		TrafficDirection: core.TrafficDirection_OUTBOUND,
		FilterChains: []*listener.FilterChain{{
			Name:    "PassthroughFilterChain",
			Filters: []*listener.Filter{tcpFilter(def, def)},
		}},
	}
}

// httpConnectionManager returns an HCM that takes its routes over ADS (RDS)
// and runs filters (the last must be the router).
func httpConnectionManager(statPrefix, routeName string, filters []*hcm.HttpFilter) *hcm.HttpConnectionManager {
	return &hcm.HttpConnectionManager{
		StatPrefix: statPrefix,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource: adsConfigSource(), RouteConfigName: routeName,
		}},
		HttpFilters: filters,
	}
}

func httpFilter(statPrefix, routeName string) *listener.Filter {
	return &listener.Filter{
		Name:       hcmFilterName,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(httpConnectionManager(statPrefix, routeName, sidecarHTTPFilters()))},
	}
}

func tcpFilter(statPrefix, cluster string) *listener.Filter {
	return &listener.Filter{
		Name: tcpFilterName,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(&tcp.TcpProxy{
			StatPrefix:       statPrefix,
			ClusterSpecifier: &tcp.TcpProxy_Cluster{Cluster: cluster},
		})},
	}
}
