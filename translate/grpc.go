package translate

import (
	"fmt"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	"github.com/meshd/meshd/internal/model"
)

// grpcOutput builds the config of proxyless gRPC clients, as istiod's grpcgen:
// an API listener "<host>:<port>" for every name a client may dial
// (xds:///reviews.shop.svc.cluster.local:9080, reviews.shop:9080, and
// reviews:9080 inside shop), whose HCM takes route "outbound|<port>||<host>"
// over RDS, and EDS clusters. Only what grpc-go accepts is emitted, so a
// client never NACKs: no DNS, static or original-destination clusters.
func (b *builder) grpcOutput() *Output {
	out := &Output{}
	var services []*model.Service
	for _, svc := range b.visibleServices() {
		if svc.Resolution != model.ResolutionEDS {
			continue
		}
		services = append(services, svc)
		for _, p := range svc.Ports {
			routeName := ClusterName(p.Port, "", svc.Hostname)
			names := hostNames(svc, b.scope.Namespace)
			for _, n := range names {
				out.Listeners = append(out.Listeners, grpcListener(fmt.Sprintf("%s:%d", n, p.Port), routeName))
			}
			out.Routes = append(out.Routes, b.grpcRoute(routeName, svc, p.Port))
		}
	}
	out.Clusters = b.serviceClusters(services, out.Routes)
	out.Endpoints = b.endpointsFor(out.Clusters)
	return out
}

func grpcListener(name, routeName string) *listener.Listener {
	return &listener.Listener{
		Name: name,
		ApiListener: &listener.ApiListener{
			ApiListener: mustAny(httpConnectionManager(name, routeName, grpcHTTPFilters())),
		},
	}
}

// grpcRoute is the route configuration of one service port, with a single
// virtual host answering to every name the service may be dialled by.
// grpc-go matches the dialled authority ("<host>:<port>") against the
// domains as it is, so each name comes alone and with the port, as istiod
// emits them for proxyless clients (serviceDomains), and the configuration
// does not ignore ports.
func (b *builder) grpcRoute(name string, svc *model.Service, port uint32) *route.RouteConfiguration {
	return &route.RouteConfiguration{
		Name: name,
		VirtualHosts: []*route.VirtualHost{{
			Name:    fmt.Sprintf("%s:%d", svc.Hostname, port),
			Domains: serviceDomains(svc, b.scope.Namespace, b.x.domain, port),
			Routes:  b.httpRoutes(svc, port),
		}},
	}
}
