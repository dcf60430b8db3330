package translate

import (
	"sort"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// Output is the config of one scope, every list sorted by resource name.
type Output struct {
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
	Clusters  []*cluster.Cluster
	Endpoints []*endpoint.ClusterLoadAssignment
}

func (o *Output) sort() {
	sort.Slice(o.Listeners, func(i, j int) bool { return o.Listeners[i].Name < o.Listeners[j].Name })
	sort.Slice(o.Routes, func(i, j int) bool { return o.Routes[i].Name < o.Routes[j].Name })
	sort.Slice(o.Clusters, func(i, j int) bool { return o.Clusters[i].Name < o.Clusters[j].Name })
	sort.Slice(o.Endpoints, func(i, j int) bool { return o.Endpoints[i].ClusterName < o.Endpoints[j].ClusterName })
}
