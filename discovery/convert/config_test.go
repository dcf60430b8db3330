package convert

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshd/meshd/internal/model"
)

var testMeta = metav1.ObjectMeta{
	Name: "obj", Namespace: "shop",
	Labels: map[string]string{"team": "a"}, Annotations: map[string]string{"note": "x"},
	CreationTimestamp: metav1.NewTime(time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)),
}

// specFromYAML fills m from a YAML spec the way a manifest would.
func specFromYAML(t *testing.T, y string, m proto.Message) {
	t.Helper()
	j, err := yaml.YAMLToJSON([]byte(y))
	require.NoError(t, err)
	require.NoError(t, protojson.Unmarshal(j, m), "spec %s", j)
}

// convertYAML converts a spec of the given kind, written in YAML.
func convertYAML(t *testing.T, kind model.Kind, spec string) (*model.Config, error) {
	t.Helper()
	meta := *testMeta.DeepCopy()
	switch kind {
	case model.KindVirtualService:
		o := &networkingv1.VirtualService{ObjectMeta: meta}
		specFromYAML(t, spec, &o.Spec)
		return VirtualService(o)
	case model.KindDestinationRule:
		o := &networkingv1.DestinationRule{ObjectMeta: meta}
		specFromYAML(t, spec, &o.Spec)
		return DestinationRule(o)
	case model.KindGateway:
		o := &networkingv1.Gateway{ObjectMeta: meta}
		specFromYAML(t, spec, &o.Spec)
		return Gateway(o)
	case model.KindServiceEntry:
		o := &networkingv1.ServiceEntry{ObjectMeta: meta}
		specFromYAML(t, spec, &o.Spec)
		return ServiceEntry(o)
	case model.KindSidecar:
		o := &networkingv1.Sidecar{ObjectMeta: meta}
		specFromYAML(t, spec, &o.Spec)
		return Sidecar(o)
	}
	t.Fatalf("unknown kind %s", kind)
	return nil, nil
}

func TestConfigHappyPath(t *testing.T) {
	tests := []struct {
		kind model.Kind
		spec string
	}{
		{model.KindVirtualService, `
hosts: [reviews]
http:
- match: [{uri: {regex: "^/api/v[0-9]+"}, headers: {x-user: {regex: "a.*"}}}]
  route:
  - {destination: {host: reviews, subset: v1}, weight: 80}
  - {destination: {host: reviews, subset: v2}, weight: 20}
- route: [{destination: {host: reviews}}]
- redirect: {uri: /new, redirectCode: 301}
- directResponse: {status: 503}
- delegate: {name: other}
tcp:
- route: [{destination: {host: db, port: {number: 5432}}}]
tls:
- match: [{sniHosts: [a.example.com]}]
  route: [{destination: {host: a.example.com}}]
`},
		{model.KindDestinationRule, `
host: reviews
trafficPolicy:
  connectionPool: {tcp: {maxConnections: 100}, http: {http2MaxRequests: 1000}}
  outlierDetection: {consecutive5xxErrors: 5, maxEjectionPercent: 50}
  portLevelSettings: [{port: {number: 9080}, connectionPool: {tcp: {maxConnections: 10}}}]
subsets:
- {name: v1, labels: {version: v1}}
- {name: v2, labels: {version: v2}}
`},
		{model.KindGateway, `
selector: {istio: ingressgateway}
servers:
- {port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}
- {port: {number: 443, name: https, protocol: HTTPS}, hosts: ["shop/*.example.com"], tls: {mode: SIMPLE, credentialName: c}}
`},
		{model.KindServiceEntry, `
hosts: [core.bank.example]
ports: [{number: 443, name: tls, protocol: TLS}]
resolution: DNS
location: MESH_EXTERNAL
`},
		{model.KindServiceEntry, `
hosts: [legacy.internal]
ports: [{number: 8080, name: http}]
resolution: STATIC
endpoints: [{address: 192.168.1.10, ports: {http: 18080}}, {address: "unix:///var/run/x.sock"}]
`},
		{model.KindSidecar, `
ingress: [{port: {number: 9080, protocol: HTTP, name: http}, defaultEndpoint: "127.0.0.1:9080"}]
egress:
- {port: {number: 443, protocol: TLS, name: tls}, hosts: [bank/core.bank.example]}
- {hosts: ["./*", "istio-system/*", "*/*.svc.cluster.local", "~/*"]}
`},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			cfg, err := convertYAML(t, tt.kind, tt.spec)
			require.NoError(t, err)
			assert.Equal(t, tt.kind, cfg.Kind)
			assert.Equal(t, "obj", cfg.Name)
			assert.Equal(t, "shop", cfg.Namespace)
			assert.Equal(t, testMeta.Labels, cfg.Labels)
			assert.Equal(t, testMeta.Annotations, cfg.Annotations)
			assert.Equal(t, testMeta.CreationTimestamp.Time, cfg.CreatedAt)
			assert.Empty(t, cfg.Source, "source is the caller's")
			require.NotNil(t, cfg.Spec)
		})
	}
}

func TestConfigSpecIsIstioAPIProto(t *testing.T) {
	cfg, err := convertYAML(t, model.KindServiceEntry, `{hosts: [a.example], ports: [{number: 80, name: http}], resolution: DNS}`)
	require.NoError(t, err)
	se, ok := cfg.Spec.(*networking.ServiceEntry)
	require.True(t, ok, "spec is %T", cfg.Spec)
	assert.Equal(t, []string{"a.example"}, se.GetHosts())
	svcs := model.ServicesFromServiceEntry(cfg)
	require.Len(t, svcs, 1)
	assert.Equal(t, "a.example", svcs[0].Service.Hostname)
}

func TestConfigMetadataErrors(t *testing.T) {
	_, err := VirtualService(&networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Namespace: "shop"}})
	var oe *model.ObjectError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "metadata.name", oe.Field)
	_, err = Gateway(nil)
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, model.KindGateway, oe.Kind)
}
