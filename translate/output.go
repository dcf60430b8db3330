package translate

import (
	"sort"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// Output is the config of one scope, every list sorted by resource name.
type Output struct {
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
	Clusters  []*cluster.Cluster
	Endpoints []*endpoint.ClusterLoadAssignment
	// Secrets are the SDS secrets the scope's listeners and clusters fetch
	// over ADS (Index.Secrets: of the scope's namespace only).
	Secrets []*tlsv3.Secret

	// shared is the view this Output was merged from (resource values the
	// Outputs of other scopes share), own the scope's own resources; both
	// nil when the Output was not built from a view.
	shared, own *Output
}

// Parts returns the view the Output shares with other scopes and the
// scope's own resources (each sorted), or nil, nil when
// it was not built from a view. The shared part is the same value for every
// scope of the view: callers may memoise work on it by pointer.
func (o *Output) Parts() (shared, own *Output) { return o.shared, o.own }

func (o *Output) sort() {
	sort.Slice(o.Listeners, func(i, j int) bool { return o.Listeners[i].Name < o.Listeners[j].Name })
	sort.Slice(o.Routes, func(i, j int) bool { return o.Routes[i].Name < o.Routes[j].Name })
	sort.Slice(o.Clusters, func(i, j int) bool { return o.Clusters[i].Name < o.Clusters[j].Name })
	sort.Slice(o.Endpoints, func(i, j int) bool { return o.Endpoints[i].ClusterName < o.Endpoints[j].ClusterName })
	sort.Slice(o.Secrets, func(i, j int) bool { return o.Secrets[i].Name < o.Secrets[j].Name })
}
