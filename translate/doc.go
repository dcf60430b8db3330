// Package translate turns a model.Snapshot and a proxy scope into Envoy
// resources: listeners, routes, clusters and endpoints (ClusterLoadAssignments).
//
// It is pure: no I/O, no clocks, no Kubernetes types. Output is sorted by
// resource name so that serialised bytes, and therefore versions, are identical
// across restarts and replicas. Naming follows istiod exactly
// (outbound|8080||a.ns.svc.cluster.local, 0.0.0.0_8080, route 8080).
//
// The work is split in two: NewIndex does the mesh-wide part once per Snapshot
// (choosing and validating VirtualServices and DestinationRules, building every
// ClusterLoadAssignment), and Build does the per-scope part. One file per
// feature: listeners.go, routes.go, virtualservice.go, clusters.go,
// endpoints.go, grpc.go, validate.go. VirtualService routing: httpmatch.go
// (match conditions), httproute.go and httpaction.go (route actions),
// retry.go, httpfilters.go (fault, CORS, HCM filters), delegate.go,
// vsvalidate.go (input checks) and tcproute.go (TCP and TLS routes).
// Destination side: destinationrule.go (which DestinationRule applies to a
// proxy: its namespace, the service's, the root namespace), trafficpolicy.go
// (connection pool, outlier detection, policy merging), loadbalancer.go
// (load balancers and route hash policies), upstreamtls.go (TLS
// origination), outboundpolicy.go (REGISTRY_ONLY / ALLOW_ANY), sni.go (TLS
// hosts without VIP), inbound.go (virtualInbound and inbound clusters),
// inbound_passthrough.go (virtualInbound's passthrough chains and
// InboundPassthroughCluster, for every sidecar), inbound_mtls.go (Istio
// mTLS chains for proxies run by Istio's agent), peerauthn*.go
// (PeerAuthentication: the mode per workload port and its chains),
// authz*.go (AuthorizationPolicy: the policies of a workload or gateway,
// by selector or targetRefs, their RBAC, ext_authz for CUSTOM, and the
// filters on the inbound chains and gateway listeners), authn_jwt.go
// (RequestAuthentication: jwt_authn with inline keys), depends.go (which
// scopes a config change can affect: Changes, Affects), domains.go (virtual host
// domains, as istiod's), reserved.go (the sidecar's own ports, which get
// no service listener), clustercheck.go. Scoping (what a scope sees):
// sidecarscope.go (the Sidecar resource that applies and its egress
// hosts), exportto.go (exportTo and the MeshConfig defaults),
// visibility.go (visible services and VirtualServices),
// gatewayclusters.go (Options.FilterGatewayClusters) and explain.go
// (ExplainScope, for /debug/sidecarz). Gateways (router scopes):
// gateway.go (which Gateways a router gets, servers served or not yet),
// gatewaymerge.go (servers merged per port, conflicts), gatewayvs.go
// (VirtualServices bound to gateways, host matching), gatewaybind.go
// (VirtualServices naming a missing Gateway or none of its hosts),
// gatewaylisteners.go, gatewaytls.go (servers terminating TLS, their SDS
// secrets: secrets.go), gatewayroutes.go and gatewayexplain.go
// (ExplainGateway, for /debug/gatewayz).
package translate
