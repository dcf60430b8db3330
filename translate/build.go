package translate

import (
	"slices"
	"sort"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/meshd/meshd/internal/model"
)

// builder holds the state of one scope's translation.
type builder struct {
	x     *Index
	scope model.Scope
	grpc  bool
	// sc is the Sidecar resource that applies to the scope (sidecarscope.go).
	sc sidecarScope
	// gwVS memoises the VirtualServices of each Gateway a router sees
	// (gatewayvs.go); gwErrs collects gateway config errors, when the
	// Index reports them (nil in Build: gateway.go).
	gwVS   map[string][]*gatewayVirtualService
	gwErrs *gatewayErrors
	// gwSecrets are the SDS secrets of the router's TLS-terminating
	// servers (gatewaytls.go), possibly repeated.
	gwSecrets []*tlsv3.Secret
	// gwLeftOut says why terminating servers got no filter chain here.
	gwLeftOut map[*boundServer]string
}

func newBuilder(x *Index, scope model.Scope) *builder {
	return &builder{x: x, scope: scope, grpc: scope.Generator == model.GeneratorGRPC, sc: x.sidecarFor(scope)}
}

// Build translates the mesh for one scope. Proxies of equal scope receive
// identical Output. Every list is sorted by name. The Output and its
// values may be shared with other scopes of x and must not be modified.
func Build(x *Index, scope model.Scope) *Output {
	if scope.Type == model.Router && scope.Generator != model.GeneratorGRPC {
		return buildRouter(x, scope)
	}
	b := newBuilder(x, scope)
	if b.grpc {
		view := x.views.get(b.viewKey(), b.grpcOutput)
		return x.shared.get(outputKey{view: view}, func() any { return merged(view, &Output{}) }).(*Output)
	}
	return b.sidecarOutput()
}

// buildRouter is Build for a gateway. Its builder is its own variable:
// gateway listeners keep closures over it, so it lives on the heap, while
// a sidecar's stays on the stack.
func buildRouter(x *Index, scope model.Scope) *Output {
	b := newBuilder(x, scope)
	out := b.routerOutput()
	out.sort()
	return out
}

// sidecarOutput is a sidecar's view merged with its inbound side, shared
// by the scopes with the same view whose workloads serve the same ports
// under the same PeerAuthentication modes (peerauthn_inbound.go).
func (b *builder) sidecarOutput() *Output {
	shared := b.x.views.get(b.viewKey(), b.sidecarOutbound)
	in := b.inboundSide()
	return b.x.shared.get(outputKey{view: shared, ports: in.key(), mtls: in.agent}, func() any {
		inListeners, inClusters := b.inboundOutput(in)
		inClusters = append(inClusters, b.authzProviderClusters(in, shared)...)
		b.addAccessLogs(inListeners, shared.Clusters)
		// The view carries its clusters' assignments; inbound clusters are
		// STATIC, so a scope adds none of its own.
		return merged(shared, &Output{Listeners: inListeners, Clusters: inClusters, Endpoints: b.endpointsFor(inClusters)})
	}).(*Output)
}

// sidecarOutbound builds a sidecar's outbound listeners, routes, clusters
// and their assignments: its view, shared by the scopes with the same
// viewKey. A reserved port (reserved.go) gets no listener and no route;
// the clusters of its services are kept.
func (b *builder) sidecarOutbound() *Output {
	services := b.visibleServices()
	httpPorts := map[uint32][]*model.Service{}
	for _, svc := range services {
		for _, p := range svc.Ports {
			if p.Protocol.IsHTTP() && !outboundReserved(svc, p) {
				httpPorts[p.Port] = append(httpPorts[p.Port], svc)
			}
		}
	}
	ports := sortedPorts(httpPorts)
	out := &Output{
		Listeners: b.sidecarListeners(ports, services),
		Routes:    b.sidecarRoutes(ports, httpPorts),
	}
	out.Clusters = append(b.serviceClusters(services, out.Routes), blackHoleCluster(), passthroughCluster())
	out.Clusters = b.addListenerClusters(out.Clusters, out.Listeners)
	out.Endpoints = b.endpointsFor(out.Clusters)
	b.addAccessLogs(out.Listeners, out.Clusters)
	return out
}

// routerOutput builds a gateway's config: listeners and route
// configurations from the Gateways that select it (gateway.go), and every
// visible cluster, or with Options.FilterGatewayClusters only those of the
// services their Gateways' VirtualServices route to (gatewayclusters.go);
// in either case every cluster a route or listener names.
func (b *builder) routerOutput() *Output {
	out := &Output{}
	if m := b.mergedGateway(); m != nil {
		out.Listeners, out.Routes = b.gatewayListeners(m)
	}
	out.Clusters = append(b.serviceClusters(b.visibleServices(), out.Routes), blackHoleCluster())
	out.Clusters = b.addListenerClusters(out.Clusters, out.Listeners)
	out.Clusters = append(out.Clusters, b.gatewayAuthz(out.Listeners, out.Clusters)...)
	out.Endpoints = b.endpointsFor(out.Clusters)
	b.addAccessLogs(out.Listeners, out.Clusters)
	out.Secrets = uniqueSecrets(b.gwSecrets)
	return out
}

// uniqueSecrets returns the secrets sorted by name, each name once (equal
// names are the very same resolved value: Index.Secrets memoises them).
func uniqueSecrets(in []*tlsv3.Secret) []*tlsv3.Secret {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b *tlsv3.Secret) int { return strings.Compare(a.GetName(), b.GetName()) })
	return slices.CompactFunc(out, func(a, b *tlsv3.Secret) bool { return a.GetName() == b.GetName() })
}

// endpointsFor returns the ClusterLoadAssignments of the EDS clusters in cs.
func (b *builder) endpointsFor(cs []*cluster.Cluster) []*endpoint.ClusterLoadAssignment {
	var out []*endpoint.ClusterLoadAssignment
	for _, c := range cs {
		if c.GetType() != cluster.Cluster_EDS {
			continue
		}
		name := edsName(c)
		if cla, ok := b.x.clas[name]; ok {
			out = append(out, cla)
		} else {
			out = append(out, &endpoint.ClusterLoadAssignment{ClusterName: name})
		}
	}
	return out
}

// referencedClusters lists every cluster the route configurations name.
func referencedClusters(routes []*route.RouteConfiguration) []string {
	var out []string
	for _, rc := range routes {
		for _, vh := range rc.GetVirtualHosts() {
			for _, r := range vh.GetRoutes() {
				ra := r.GetRoute()
				if c := ra.GetCluster(); c != "" {
					out = append(out, c)
				}
				for _, wc := range ra.GetWeightedClusters().GetClusters() {
					out = append(out, wc.GetName())
				}
				for _, m := range ra.GetRequestMirrorPolicies() {
					out = append(out, m.GetCluster())
				}
			}
		}
	}
	return out
}

func sortedPorts(m map[uint32][]*model.Service) []uint32 {
	out := make([]uint32, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
