package translate_test

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// translateYAML translates manifests (and an optional mesh config) for a
// scope key, checks the output, and returns it with every config error.
func translateYAML(t *testing.T, scope, manifests, mesh string) (*translate.Output, []model.ObjectError) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in.yaml")
	require.NoError(t, os.WriteFile(in, []byte(manifests), 0o644))
	if mesh != "" {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(mesh), 0o644))
	}
	snap := loadSnapshot(t, in)
	sc, err := model.ParseScopeKey(scope)
	require.NoError(t, err)
	x := translate.NewIndex(snap, translate.Options{})
	out := translate.Build(x, sc)
	require.NoError(t, translate.Validate(out))
	return out, append(snap.Errors(), x.Errors()...)
}

func clusterNamed(t *testing.T, out *translate.Output, name string) *cluster.Cluster {
	t.Helper()
	for _, c := range out.Clusters {
		if c.Name == name {
			return c
		}
	}
	require.Failf(t, "missing cluster", "%s", name)
	return nil
}

func maxConnections(t *testing.T, out *translate.Output, name string) uint32 {
	return clusterNamed(t, out, name).GetCircuitBreakers().GetThresholds()[0].GetMaxConnections().GetValue()
}

const backend = `
apiVersion: v1
kind: Service
metadata: {name: core, namespace: backend, creationTimestamp: "2026-01-01T00:00:00Z"}
spec:
  clusterIP: 10.96.1.1
  selector: {app: core}
  ports:
  - {name: http, port: 8080}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: core-1, namespace: backend, labels: {kubernetes.io/service-name: core}}
addressType: IPv4
ports:
- {name: http, port: 8080}
endpoints:
- addresses: [10.1.0.1]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: core-a, namespace: backend}
- addresses: [10.1.0.2]
  conditions: {ready: true}
  targetRef: {kind: Pod, name: core-b, namespace: backend}
---
apiVersion: v1
kind: Pod
metadata: {name: core-a, namespace: backend, labels: {app: core, track: stable}}
spec: {containers: [{name: app, image: core}]}
status: {podIP: 10.1.0.1}
---
apiVersion: v1
kind: Pod
metadata: {name: core-b, namespace: backend, labels: {app: core, track: canary}}
spec: {containers: [{name: app, image: core}]}
status: {podIP: 10.1.0.2}
`

func dr(ns, name, created, extra string, maxConn int) string {
	return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: ` + name + `, namespace: ` + ns + `, creationTimestamp: "` + created + `"}
spec:
  host: core.backend.svc.cluster.local
` + extra + `
  trafficPolicy:
    connectionPool:
      tcp: {maxConnections: ` + strconv.Itoa(maxConn) + `}
`
}

// The proxy's namespace first, then the service's (if exported to the
// proxy), then the root namespace.
func TestDestinationRuleLookupOrder(t *testing.T) {
	in := backend +
		dr("transfer", "core", "2026-01-02T00:00:00Z", "", 11) +
		dr("backend", "core", "2026-01-02T00:00:00Z", `  exportTo: ["."]`, 22) +
		dr("istio-system", "core", "2026-01-02T00:00:00Z", "", 33)
	const c = "outbound|8080||core.backend.svc.cluster.local"
	for scope, want := range map[string]uint32{
		"sidecar|envoy|transfer": 11, // its own rule
		"sidecar|envoy|backend":  22, // the service's namespace rule, exported to "."
		"sidecar|envoy|loan":     33, // backend's rule is not exported to loan: root default
	} {
		out, errs := translateYAML(t, scope, in, "")
		assert.Empty(t, errs)
		assert.Equal(t, want, maxConnections(t, out, c), scope)
	}
}

func TestDestinationRuleExportedFromServiceNamespace(t *testing.T) {
	in := backend + dr("backend", "core", "2026-01-02T00:00:00Z", `  exportTo: ["loan"]`, 22)
	out, _ := translateYAML(t, "sidecar|envoy|loan", in, "")
	assert.Equal(t, uint32(22), maxConnections(t, out, "outbound|8080||core.backend.svc.cluster.local"))
	out, _ = translateYAML(t, "sidecar|envoy|card", in, "")
	assert.Equal(t, uint32(4294967295), maxConnections(t, out, "outbound|8080||core.backend.svc.cluster.local"))
}

// Two rules for one host in one namespace: the oldest wins, the other is reported.
func TestConflictingDestinationRules(t *testing.T) {
	in := backend +
		dr("transfer", "young", "2026-01-03T00:00:00Z", "", 1) +
		dr("transfer", "old", "2026-01-02T00:00:00Z", "", 2)
	out, errs := translateYAML(t, "sidecar|envoy|transfer", in, "")
	assert.Equal(t, uint32(2), maxConnections(t, out, "outbound|8080||core.backend.svc.cluster.local"))
	require.Len(t, errs, 1)
	assert.Equal(t, "young", errs[0].Name)
	assert.Equal(t, "spec.host", errs[0].Field)
	assert.Contains(t, errs[0].Message, "transfer/old")
}

// A policy Envoy would reject is rejected alone, with its field named; the
// cluster is built without it.
func TestInvalidTrafficPolicyRejected(t *testing.T) {
	in := backend + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: core, namespace: transfer}
spec:
  host: core.backend.svc.cluster.local
  subsets:
  - name: stable
    labels: {track: stable}
    trafficPolicy:
      loadBalancer:
        consistentHash: {httpHeaderName: x, ringHash: {minimumRingSize: 9000000}}
`
	out, errs := translateYAML(t, "sidecar|envoy|transfer", in, "")
	require.Len(t, errs, 1)
	assert.Equal(t, "spec.subsets[0].trafficPolicy", errs[0].Field)
	assert.Contains(t, errs[0].Message, "not applied")
	c := clusterNamed(t, out, "outbound|8080||core.backend.svc.cluster.local")
	assert.Equal(t, cluster.Cluster_LEAST_REQUEST, c.GetLbPolicy(), "istiod's default balancer")
	for _, c := range out.Clusters {
		assert.NotContains(t, c.Name, "|stable|")
	}
}

// Subset labels with an empty key are rejected by conversion, naming the field.
func TestBadSubsetLabels(t *testing.T) {
	in := backend + `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: core, namespace: transfer}
spec:
  host: core.backend.svc.cluster.local
  subsets:
  - name: stable
    labels: {"": stable}
`
	_, errs := translateYAML(t, "sidecar|envoy|transfer", in, "")
	require.Len(t, errs, 1)
	assert.Equal(t, model.KindDestinationRule, errs[0].Kind)
	assert.Equal(t, "spec.subsets[0].labels", errs[0].Field)
}

// Namespaces may define a subset of the same name with different labels:
// each scope gets the endpoints its own rule selects.
func TestSubsetLabelsPerNamespace(t *testing.T) {
	subset := func(ns, track, created string) string {
		return `---
apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: core, namespace: ` + ns + `, creationTimestamp: "` + created + `"}
spec:
  host: core.backend.svc.cluster.local
  subsets:
  - name: pinned
    labels: {track: ` + track + `}
`
	}
	in := backend + subset("transfer", "stable", "2026-01-02T00:00:00Z") + subset("loan", "canary", "2026-01-03T00:00:00Z")
	const name = "outbound|8080|pinned|core.backend.svc.cluster.local"
	for scope, want := range map[string]string{"sidecar|envoy|transfer": "10.1.0.1", "sidecar|envoy|loan": "10.1.0.2"} {
		out, errs := translateYAML(t, scope, in, "")
		assert.Empty(t, errs)
		eds := clusterNamed(t, out, name).GetEdsClusterConfig().GetServiceName()
		var found bool
		for _, e := range out.Endpoints {
			if e.ClusterName == eds {
				found = true
				require.Len(t, e.Endpoints, 1)
				assert.Equal(t, want, e.Endpoints[0].LbEndpoints[0].GetEndpoint().GetAddress().GetSocketAddress().GetAddress(), scope)
			}
		}
		assert.True(t, found, "%s: endpoints %s", scope, eds)
	}
}

func defaultChainCluster(t *testing.T, out *translate.Output) string {
	for _, l := range out.Listeners {
		if l.Name != translate.VirtualOutboundListener {
			continue
		}
		tp := &tcp.TcpProxy{}
		require.NoError(t, l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(tp))
		return tp.GetCluster()
	}
	require.Fail(t, "no virtualOutbound")
	return ""
}

// The Sidecar that applies decides outboundTrafficPolicy: a matching
// workloadSelector one, else the namespace's selector-less one, else the
// root namespace's; without any, the mesh config.
func TestOutboundTrafficPolicy(t *testing.T) {
	sidecar := func(ns, name, selector, mode string) string {
		s := `---
apiVersion: networking.istio.io/v1
kind: Sidecar
metadata: {name: ` + name + `, namespace: ` + ns + `}
spec:
`
		if selector != "" {
			s += "  workloadSelector: {labels: {" + selector + "}}\n"
		}
		return s + "  outboundTrafficPolicy: {mode: " + mode + "}\n"
	}
	in := backend + sidecar("istio-system", "default", "", "REGISTRY_ONLY") +
		sidecar("shop", "legacy", "app: legacy", "ALLOW_ANY") +
		sidecar("open", "default", "", "ALLOW_ANY")
	for scope, want := range map[string]string{
		"sidecar|envoy|shop|app=web":    translate.BlackHoleCluster,   // root namespace default
		"sidecar|envoy|shop|app=legacy": translate.PassthroughCluster, // workload selector
		"sidecar|envoy|open":            translate.PassthroughCluster, // namespace-wide Sidecar
	} {
		out, _ := translateYAML(t, scope, in, "")
		assert.Equal(t, want, defaultChainCluster(t, out), scope)
	}
	// Without Sidecars: the mesh config, ALLOW_ANY by default.
	out, _ := translateYAML(t, "sidecar|envoy|shop", backend, "")
	assert.Equal(t, translate.PassthroughCluster, defaultChainCluster(t, out))
	out, _ = translateYAML(t, "sidecar|envoy|shop", backend, "outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n")
	assert.Equal(t, translate.BlackHoleCluster, defaultChainCluster(t, out))
	out, _ = translateYAML(t, "sidecar|envoy|open", backend+sidecar("open", "default", "", "ALLOW_ANY"),
		"outboundTrafficPolicy: {mode: REGISTRY_ONLY}\n")
	assert.Equal(t, translate.PassthroughCluster, defaultChainCluster(t, out))
}
