package main

import (
	"fmt"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// printResponse prints one line per resource and returns the names the
// resources reference, by type (EDS from clusters, RDS from listeners, CDS
// from routes).
func printResponse(resp *discovery.DiscoveryResponse) (map[string][]string, error) {
	fmt.Printf("%s version=%s resources=%d\n", resp.TypeUrl, resp.VersionInfo, len(resp.Resources))
	eds, rds, cds := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, a := range resp.Resources {
		m, err := a.UnmarshalNew()
		if err != nil {
			return nil, err
		}
		switch r := m.(type) {
		case *cluster.Cluster:
			fmt.Printf("  cluster %s (%s)\n", r.Name, r.GetType())
			if r.GetType() == cluster.Cluster_EDS {
				eds[r.Name] = true
			}
		case *listener.Listener:
			fmt.Printf("  listener %s\n", r.Name)
			for _, name := range routeNames(r) {
				rds[name] = true
			}
		case *route.RouteConfiguration:
			fmt.Printf("  route %s (%d virtual hosts)\n", r.Name, len(r.VirtualHosts))
			for _, vh := range r.VirtualHosts {
				for _, rt := range vh.Routes {
					if c := rt.GetRoute().GetCluster(); c != "" {
						cds[c] = true
					}
					for _, wc := range rt.GetRoute().GetWeightedClusters().GetClusters() {
						cds[wc.Name] = true
					}
				}
			}
		case *endpoint.ClusterLoadAssignment:
			n := 0
			for _, l := range r.Endpoints {
				n += len(l.LbEndpoints)
			}
			fmt.Printf("  endpoints %s: %d\n", r.ClusterName, n)
		}
	}
	refs := map[string][]string{resourcev3.EndpointType: sorted(eds), resourcev3.RouteType: sorted(rds)}
	if resp.TypeUrl == resourcev3.RouteType {
		refs[resourcev3.ClusterType] = sorted(cds)
	}
	return refs, nil
}

func routeNames(l *listener.Listener) []string {
	var anys []*anypb.Any
	if a := l.GetApiListener().GetApiListener(); a != nil {
		anys = append(anys, a)
	}
	for _, fc := range l.FilterChains {
		for _, f := range fc.Filters {
			anys = append(anys, f.GetTypedConfig())
		}
	}
	var out []string
	for _, a := range anys {
		var h hcm.HttpConnectionManager
		if a.MessageIs(&h) && a.UnmarshalTo(&h) == nil && h.GetRds() != nil {
			out = append(out, h.GetRds().RouteConfigName)
		}
	}
	return out
}
