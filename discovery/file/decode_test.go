package file

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
	security "istio.io/api/security/v1beta1"

	"github.com/meshd/meshd/internal/model"
)

const vsReviews = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
  namespace: shop
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews}
`

func TestDecodeDocObjects(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		kind   model.Kind
		ns     string
		objNam string
		check  func(*testing.T, any)
	}{
		{"namespace is cluster scoped", "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, namespace: ignored}\n",
			model.KindNamespace, "", "shop", func(t *testing.T, o any) {
				assert.Equal(t, &model.Namespace{Name: "shop"}, o)
			}},
		{"service in default namespace", "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec:\n  ports: [{name: http, port: 80}]\n",
			model.KindService, "default", "web", func(t *testing.T, o any) {
				assert.Equal(t, "web.default.svc.cluster.local", o.(*model.Service).Hostname)
			}},
		{"endpoint slice", "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: web-1, namespace: a, labels: {kubernetes.io/service-name: web}}\naddressType: IPv4\nendpoints: [{addresses: [10.1.0.1]}]\n",
			model.KindEndpointSlice, "a", "web-1", func(t *testing.T, o any) {
				assert.Equal(t, "web", o.(*model.EndpointSet).ServiceName)
			}},
		{"pod", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: a, labels: {app: x}}\nstatus: {podIP: 10.1.0.1}\n",
			model.KindPod, "a", "p", func(t *testing.T, o any) {
				assert.Equal(t, "10.1.0.1", o.(*model.Workload).IP)
			}},
		{"virtual service v1", vsReviews, model.KindVirtualService, "shop", "reviews", func(t *testing.T, o any) {
			cfg := o.(*model.Config)
			assert.Equal(t, "x.yaml#1", cfg.Source)
			assert.Equal(t, []string{"reviews"}, cfg.Spec.(*networking.VirtualService).GetHosts())
		}},
		{"v1beta1 and snake_case fields", "apiVersion: networking.istio.io/v1beta1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  traffic_policy: {connectionPool: {tcp: {max_connections: 5}}}\n",
			model.KindDestinationRule, "default", "r", func(t *testing.T, o any) {
				dr := o.(*model.Config).Spec.(*networking.DestinationRule)
				assert.Equal(t, int32(5), dr.GetTrafficPolicy().GetConnectionPool().GetTcp().GetMaxConnections())
			}},
		{"durations as istiod reads them", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: r}\nspec:\n  host: r\n  trafficPolicy:\n    outlierDetection: {consecutive5xxErrors: 7, interval: 5m, baseEjectionTime: 1h30m}\n    connectionPool: {tcp: {connectTimeout: 250ms}}\n",
			model.KindDestinationRule, "default", "r", func(t *testing.T, o any) {
				tp := o.(*model.Config).Spec.(*networking.DestinationRule).GetTrafficPolicy()
				assert.Equal(t, 5*time.Minute, tp.GetOutlierDetection().GetInterval().AsDuration())
				assert.Equal(t, 90*time.Minute, tp.GetOutlierDetection().GetBaseEjectionTime().AsDuration())
				assert.Equal(t, 250*time.Millisecond, tp.GetConnectionPool().GetTcp().GetConnectTimeout().AsDuration())
				assert.Equal(t, uint32(7), tp.GetOutlierDetection().GetConsecutive_5XxErrors().GetValue())
			}},
		{"quoted numbers", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a]\n  http: [{route: [{destination: {host: a, port: {number: '80'}}, weight: '100'}]}]\n",
			model.KindVirtualService, "default", "v", func(t *testing.T, o any) {
				r := o.(*model.Config).Spec.(*networking.VirtualService).GetHttp()[0].GetRoute()[0]
				assert.Equal(t, int32(100), r.GetWeight())
				assert.Equal(t, uint32(80), r.GetDestination().GetPort().GetNumber())
			}},
		{"v1alpha3 gateway", "apiVersion: networking.istio.io/v1alpha3\nkind: Gateway\nmetadata: {name: gw, namespace: istio-system}\nspec:\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]\nstatus: {}\n",
			model.KindGateway, "istio-system", "gw", nil},
		{"sidecar", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: default, namespace: shop}\nspec:\n  egress: [{hosts: ['./*']}]\n",
			model.KindSidecar, "shop", "default", nil},
		{"service entry", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se, namespace: bank}\nspec:\n  hosts: [a.example]\n  ports: [{number: 443, name: tls, protocol: TLS}]\n  resolution: DNS\n",
			model.KindServiceEntry, "bank", "se", nil},
		{"request authentication v1beta1", "apiVersion: security.istio.io/v1beta1\nkind: RequestAuthentication\nmetadata: {name: jwt, namespace: bank}\nspec:\n  jwtRules: [{issuer: https://login.example, jwksUri: https://login.example/keys}]\n",
			model.KindRequestAuthentication, "bank", "jwt", func(t *testing.T, o any) {
				r := o.(*model.Config).Spec.(*security.RequestAuthentication).GetJwtRules()[0]
				assert.Equal(t, "https://login.example/keys", r.GetJwksUri())
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := decodeDoc([]byte(tt.doc), "x.yaml#1", 1, "cluster.local")
			require.True(t, ok)
			require.Nil(t, res.err, "%v", res.err)
			assert.True(t, res.identified)
			assert.Equal(t, tt.kind, res.kind)
			assert.Equal(t, tt.ns, res.namespace)
			assert.Equal(t, tt.objNam, res.name)
			require.NotNil(t, res.obj)
			if tt.check != nil {
				tt.check(t, res.obj)
			}
		})
	}
}

func TestDecodeDocErrors(t *testing.T) {
	tests := []struct {
		name       string
		doc        string
		line       int
		identified bool
		want       model.ObjectError // Source is always "x.yaml#2"
		msg        string            // substring of the message
	}{
		{"malformed YAML, line in file", "apiVersion: v1\nkind: Service\nmetadata:\n  name: [a\n", 10, false,
			model.ObjectError{}, "line 1"},
		{"not a mapping", "- a\n- b\n", 1, false, model.ObjectError{}, "not a Kubernetes object"},
		{"missing kind", "apiVersion: v1\nmetadata: {name: a}\n", 1, false, model.ObjectError{Field: "kind"}, "kind is required"},
		{"missing name", "apiVersion: v1\nkind: Service\nmetadata: {namespace: a}\n", 1, false,
			model.ObjectError{Kind: "Service", Namespace: "a", Field: "metadata.name"}, "name is required"},
		{"unknown kind", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: a}\n", 1, true,
			model.ObjectError{Kind: "Deployment", Namespace: "a", Name: "d", Field: "kind"}, `unsupported kind "Deployment"`},
		{"wrong apiVersion", "apiVersion: networking.istio.io/v2\nkind: VirtualService\nmetadata: {name: v}\n", 1, true,
			model.ObjectError{Kind: "VirtualService", Namespace: "default", Name: "v", Field: "apiVersion"}, "networking.istio.io/v1"},
		{"duplicate key", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec: {}\nspec: {}\n", 1, true,
			model.ObjectError{Kind: "Service", Namespace: "default", Name: "s"}, `line 5: key "spec" already set`},
		{"unknown field in Kubernetes object", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{name: http, port: 80, prot: TCP}]\n", 1, true,
			model.ObjectError{Kind: "Service", Namespace: "default", Name: "s", Field: "spec.ports[0].prot"}, "unknown field"},
		{"unknown metadata field in Istio object", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s, lables: {a: b}}\nspec: {}\n", 1, true,
			model.ObjectError{Kind: "Sidecar", Namespace: "default", Name: "s", Field: "metadata.lables"}, "unknown field"},
		{"unknown top-level field in Istio object", "apiVersion: networking.istio.io/v1\nkind: Sidecar\nmetadata: {name: s}\nspecs: {}\n", 1, true,
			model.ObjectError{Kind: "Sidecar", Namespace: "default", Name: "s", Field: "specs"}, "unknown field"},
		{"unknown field in Istio spec", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: shop}\nspec:\n  hosts: [a]\n  http:\n  - rout: [{destination: {host: a}}]\n", 1, true,
			model.ObjectError{Kind: "VirtualService", Namespace: "shop", Name: "v", Field: "spec.http[0].rout"}, "unknown field"},
		{"unknown field in Istio map value", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a]\n  http:\n  - match: [{headers: {x-a: {exakt: b}}}]\n    route: [{destination: {host: a}}]\n", 1, true,
			model.ObjectError{Kind: "VirtualService", Namespace: "default", Name: "v", Field: "spec.http[0].match[0].headers[x-a].exakt"}, "unknown field"},
		{"wrong type in Kubernetes object", "apiVersion: v1\nkind: Service\nmetadata: {name: s}\nspec:\n  ports: [{name: http, port: eighty}]\n", 1, true,
			model.ObjectError{Kind: "Service", Namespace: "default", Name: "s", Field: "spec.ports.port"}, "cannot decode"},
		{"wrong type in Istio spec", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a]\n  http: [{route: [{destination: {host: a}, weight: heavy}]}]\n", 1, true,
			model.ObjectError{Kind: "VirtualService", Namespace: "default", Name: "v", Field: "spec.http[0].route[0].weight"}, `must be a number, not "heavy"`},
		{"fraction for an integer", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: [a]\n  http: [{route: [{destination: {host: a}, weight: 99.5}]}]\n", 1, true,
			model.ObjectError{Kind: "VirtualService", Namespace: "default", Name: "v", Field: "spec.http[0].route[0].weight"}, "must be an integer"},
		{"negative unsigned", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se}\nspec:\n  hosts: [a]\n  ports: [{number: -1, name: x}]\n", 1, true,
			model.ObjectError{Kind: "ServiceEntry", Namespace: "default", Name: "se", Field: "spec.ports[0].number"}, "non-negative integer"},
		{"scalar for a list", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v}\nspec:\n  hosts: a\n", 1, true,
			model.ObjectError{Kind: "VirtualService", Namespace: "default", Name: "v", Field: "spec.hosts"}, "must be a list"},
		{"list for a string", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: [a]\n", 1, true,
			model.ObjectError{Kind: "DestinationRule", Namespace: "default", Name: "d", Field: "spec.host"}, "must be a string"},
		{"spec not a mapping", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec: [a]\n", 1, true,
			model.ObjectError{Kind: "DestinationRule", Namespace: "default", Name: "d", Field: "spec"}, "must be a mapping"},
		{"bad enum in Istio spec", "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {name: se}\nspec:\n  hosts: [a]\n  resolution: MAGIC\n", 1, true,
			model.ObjectError{Kind: "ServiceEntry", Namespace: "default", Name: "se", Field: "spec.resolution"}, `unknown value "MAGIC" (want one of NONE, STATIC, DNS`},
		{"bad duration", "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: d}\nspec:\n  host: a\n  trafficPolicy: {outlierDetection: {interval: 5x}}\n", 1, true,
			model.ObjectError{Kind: "DestinationRule", Namespace: "default", Name: "d", Field: "spec.trafficPolicy.outlierDetection.interval"}, "invalid duration"},
		{"validation error from convert", "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: v, namespace: shop}\nspec:\n  hosts: [a]\n  http:\n  - match: [{uri: {regex: '(unclosed'}}]\n    route: [{destination: {host: a}}]\n", 1, true,
			model.ObjectError{Kind: "VirtualService", Namespace: "shop", Name: "v", Field: "spec.http[0].match[0].uri.regex"}, "invalid RE2 regex"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, ok := decodeDoc([]byte(tt.doc), "x.yaml#2", tt.line, "")
			require.True(t, ok)
			require.NotNil(t, res.err)
			assert.Nil(t, res.obj)
			assert.Equal(t, tt.identified, res.identified)
			got := *res.err
			assert.Contains(t, got.Message, tt.msg)
			got.Message = ""
			tt.want.Source = "x.yaml#2"
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDecodeDocYAMLLineIsFileLine(t *testing.T) {
	res, ok := decodeDoc([]byte("a: 1\nb: [\n"), "x.yaml#3", 20, "")
	require.True(t, ok)
	require.NotNil(t, res.err)
	assert.NotContains(t, res.err.Message, "line 2:")
	assert.Regexp(t, `line 2[01]`, res.err.Message)
}

func TestDecodeDocNullDocument(t *testing.T) {
	_, ok := decodeDoc([]byte("~\n"), "x.yaml#1", 1, "")
	assert.False(t, ok)
}
