package translate

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
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
			vip := svc.VIPs[0]
			cluster := ClusterName(p.Port, "", svc.Hostname)
			out = append(out, outboundListener(OutboundListenerName(vip, p.Port), vip, p.Port, tcpFilter(cluster, cluster)))
		}
	}
	return append(out, virtualOutbound())
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
// listener of its original destination; unmatched traffic passes through.
func virtualOutbound() *listener.Listener {
	return &listener.Listener{
		Name:             VirtualOutboundListener,
		Address:          socketAddress("0.0.0.0", virtualOutboundPort),
		UseOriginalDst:   wrapperspb.Bool(true),
		TrafficDirection: core.TrafficDirection_OUTBOUND,
		FilterChains: []*listener.FilterChain{{
			Name:    "PassthroughFilterChain",
			Filters: []*listener.Filter{tcpFilter(PassthroughCluster, PassthroughCluster)},
		}},
	}
}

// httpConnectionManager returns an HCM that takes its routes over ADS (RDS).
func httpConnectionManager(statPrefix, routeName string) *hcm.HttpConnectionManager {
	return &hcm.HttpConnectionManager{
		StatPrefix: statPrefix,
		RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{
			ConfigSource: adsConfigSource(), RouteConfigName: routeName,
		}},
		HttpFilters: []*hcm.HttpFilter{{
			Name:       routerFilterName,
			ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&router.Router{})},
		}},
	}
}

func httpFilter(statPrefix, routeName string) *listener.Filter {
	return &listener.Filter{
		Name:       hcmFilterName,
		ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(httpConnectionManager(statPrefix, routeName))},
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
