package translate

import (
	meshconfig "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// registryOnly reports whether the scope may only reach registry hosts: the
// outboundTrafficPolicy of the Sidecar that applies (sidecarscope.go), else
// the mesh's (whose default, filled in by model.WithDefaults, is ALLOW_ANY).
func (b *builder) registryOnly() bool {
	if p := b.sc.spec.GetOutboundTrafficPolicy(); p != nil {
		return p.GetMode() == networking.OutboundTrafficPolicy_REGISTRY_ONLY
	}
	p := b.x.snap.MeshConfig().GetOutboundTrafficPolicy()
	return p != nil && p.GetMode() == meshconfig.MeshConfig_OutboundTrafficPolicy_REGISTRY_ONLY
}

// outboundDefaultCluster is where traffic to a destination outside the
// registry goes: BlackHoleCluster under REGISTRY_ONLY, so calls outside the
// registry fail and show in its stats, else PassthroughCluster.
func (b *builder) outboundDefaultCluster() string {
	if b.registryOnly() {
		return BlackHoleCluster
	}
	return PassthroughCluster
}

// catchAllVirtualHost is the last virtual host of every sidecar route
// configuration: istiod's "allow_any" to PassthroughCluster, or
// "block_all" to BlackHoleCluster under REGISTRY_ONLY.
func (b *builder) catchAllVirtualHost() *route.VirtualHost {
	name := "allow_any"
	if b.registryOnly() {
		name = "block_all"
	}
	return &route.VirtualHost{
		Name: name, Domains: []string{"*"},
		Routes: []*route.Route{defaultRoute(b.outboundDefaultCluster())},
	}
}
