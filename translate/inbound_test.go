package translate_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshd/meshd/translate"
)

func hasListener(out *translate.Output, name string) bool {
	for _, l := range out.Listeners {
		if l.Name == name {
			return true
		}
	}
	return false
}

// Every sidecar gets virtualInbound and InboundPassthroughCluster, as from
// istiod (with iptables redirection a pod without them drops every inbound
// connection); only those whose workload backs a service of their
// namespace get inbound clusters. Proxyless gRPC clients get neither.
func TestInboundOnlyForBackingWorkloads(t *testing.T) {
	for scope, want := range map[string]struct{ inbound, backing bool }{
		"sidecar|envoy|backend|app=core,track=stable": {true, true},
		"sidecar|envoy|backend|app=other":             {true, false},
		"sidecar|envoy|backend":                       {true, false},  // no labels known
		"sidecar|envoy|transfer|app=core":             {true, false},  // another namespace's service
		"sidecar|grpc|backend|app=core":               {false, false}, // proxyless: no inbound
	} {
		out, _ := translateYAML(t, scope, backend, "")
		assert.Equal(t, want.inbound, hasListener(out, translate.VirtualInboundListener), scope)
		var inbound, passthrough bool
		for _, c := range out.Clusters {
			inbound = inbound || c.Name == translate.InboundClusterName(8080)
			passthrough = passthrough || c.Name == translate.InboundPassthroughCluster
		}
		assert.Equal(t, want.backing, inbound, scope)
		assert.Equal(t, want.inbound, passthrough, scope)
	}
}

// A wildcard DestinationRule host applies to the hosts it matches; an exact
// host in the same namespace wins over it.
func TestWildcardDestinationRule(t *testing.T) {
	in := backend + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: all-backend, namespace: transfer}
spec:
  host: "*.backend.svc.cluster.local"
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: 7}
`
	out, errs := translateYAML(t, "sidecar|envoy|transfer", in, "")
	assert.Empty(t, errs)
	assert.Equal(t, uint32(7), maxConnections(t, out, "outbound|8080||core.backend.svc.cluster.local"))

	in += dr("transfer", "core", "2026-01-02T00:00:00Z", "", 9)
	out, _ = translateYAML(t, "sidecar|envoy|transfer", in, "")
	assert.Equal(t, uint32(9), maxConnections(t, out, "outbound|8080||core.backend.svc.cluster.local"))
}
