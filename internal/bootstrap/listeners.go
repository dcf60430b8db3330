package bootstrap

import (
	"fmt"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// Paths of the static listeners, Istio's.
const (
	// PrometheusPath is served on --stats-port.
	PrometheusPath = "/stats/prometheus"
	// ReadinessPath is served on --readiness-port.
	ReadinessPath = "/healthz/ready"
	// adminReadyPath is Envoy's admin endpoint answering 200 "LIVE" once the
	// server is initialised, i.e. once the first CDS and LDS (and the EDS
	// and RDS they need) arrived: initial_fetch_timeout is 0.
	adminReadyPath = "/ready"
)

// Filter names as Envoy registers them.
const (
	hcmFilterName    = "envoy.filters.network.http_connection_manager"
	routerFilterName = "envoy.filters.http.router"
)

// http2Options is HTTP/2 to the upstream with meshd's keepalive.
func http2Options() *upstreamhttp.HttpProtocolOptions {
	return &upstreamhttp.HttpProtocolOptions{
		UpstreamProtocolOptions: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_{
			ExplicitHttpConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig{
				ProtocolConfig: &upstreamhttp.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
					Http2ProtocolOptions: &core.Http2ProtocolOptions{
						ConnectionKeepalive: &core.KeepaliveSettings{
							Interval: durationOf(xdsKeepaliveInterval),
							Timeout:  durationOf(xdsKeepaliveTimeout),
						},
					},
				},
			},
		},
	}
}

// statsListener is Istio's <wildcard>_15090: /stats/prometheus proxied to
// the admin.
func (o *Options) statsListener() (*listener.Listener, error) {
	r := &route.Route{
		Match:  &route.RouteMatch{PathSpecifier: &route.RouteMatch_Prefix{Prefix: PrometheusPath}},
		Action: &route.Route_Route{Route: &route.RouteAction{ClusterSpecifier: &route.RouteAction_Cluster{Cluster: PrometheusClusterName}}},
	}
	return o.adminListener(o.StatsPort, "stats", r)
}

// readinessListener is Istio's <wildcard>_15021. Istio sends /healthz/ready
// to pilot-agent, which asks Envoy; with no agent, Envoy's admin /ready
// answers directly (path rewritten). The path is matched exactly so that
// nothing else of the admin is reachable here.
func (o *Options) readinessListener() (*listener.Listener, error) {
	r := &route.Route{
		Match: &route.RouteMatch{PathSpecifier: &route.RouteMatch_Path{Path: ReadinessPath}},
		Action: &route.Route_Route{Route: &route.RouteAction{
			ClusterSpecifier: &route.RouteAction_Cluster{Cluster: AdminClusterName},
			PrefixRewrite:    adminReadyPath,
		}},
	}
	return o.adminListener(o.ReadinessPort, "readiness", r)
}

// adminListener is an HTTP listener on every interface at port with one
// route, exempt from the connection limit and overload manager as Istio's.
func (o *Options) adminListener(port uint32, statPrefix string, r *route.Route) (*listener.Listener, error) {
	rt, err := pack(&router.Router{})
	if err != nil {
		return nil, err
	}
	m, err := pack(&hcm.HttpConnectionManager{
		CodecType:  hcm.HttpConnectionManager_AUTO,
		StatPrefix: statPrefix,
		RouteSpecifier: &hcm.HttpConnectionManager_RouteConfig{RouteConfig: &route.RouteConfiguration{
			VirtualHosts: []*route.VirtualHost{{Name: "backend", Domains: []string{"*"}, Routes: []*route.Route{r}}},
		}},
		HttpFilters: []*hcm.HttpFilter{{Name: routerFilterName, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: rt}}},
	})
	if err != nil {
		return nil, err
	}
	addr := o.wildcard()
	return &listener.Listener{
		Name:                  fmt.Sprintf("%s_%d", addr, port),
		Address:               socketAddress(addr, port),
		IgnoreGlobalConnLimit: true,
		BypassOverloadManager: true,
		FilterChains: []*listener.FilterChain{{Filters: []*listener.Filter{{
			Name: hcmFilterName, ConfigType: &listener.Filter_TypedConfig{TypedConfig: m},
		}}}},
	}, nil
}
