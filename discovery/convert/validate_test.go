package convert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
)

func TestValidationErrors(t *testing.T) {
	const dest = `{destination: {host: reviews}}`
	tests := []struct {
		name      string
		kind      model.Kind
		spec      string
		wantField string
		wantMsg   string
	}{
		// VirtualService
		{"vs no hosts with gateways", model.KindVirtualService, `{gateways: [gw], http: [{route: [` + dest + `]}]}`, "spec.hosts", "delegate"},
		{"vs no hosts with tcp", model.KindVirtualService, `{tcp: [{route: [` + dest + `]}]}`, "spec.hosts", "delegate"},
		{"vs empty host", model.KindVirtualService, `{hosts: [a, ""], http: [{route: [` + dest + `]}]}`, "spec.hosts[1]", "must not be empty"},
		{"vs no routes at all", model.KindVirtualService, `{hosts: [a]}`, "spec", "http, tcp or tls"},
		{"vs http without action", model.KindVirtualService, `{hosts: [a], http: [{route: [` + dest + `]}, {match: [{uri: {prefix: /}}]}]}`, "spec.http[1].route", "route destination, a redirect"},
		{"vs route and redirect", model.KindVirtualService, `{hosts: [a], http: [{route: [` + dest + `], redirect: {uri: /x}}]}`, "spec.http[0].redirect", "cannot both"},
		{"vs directResponse and route", model.KindVirtualService, `{hosts: [a], http: [{route: [` + dest + `], directResponse: {status: 200}}]}`, "spec.http[0].directResponse", "cannot be combined"},
		{"vs destination missing", model.KindVirtualService, `{hosts: [a], http: [{route: [{weight: 100}]}]}`, "spec.http[0].route[0].destination", "required"},
		{"vs destination host missing", model.KindVirtualService, `{hosts: [a], http: [{route: [{destination: {subset: v1}, weight: 50}, {destination: {host: b}, weight: 50}]}]}`, "spec.http[0].route[0].destination.host", "host is required"},
		{"vs weight too big", model.KindVirtualService, `{hosts: [a], http: [{route: [` + dest + `, {destination: {host: b}, weight: 101}]}]}`, "spec.http[0].route[1].weight", "101 is out of range"},
		{"vs negative weight", model.KindVirtualService, `{hosts: [a], http: [{route: [{destination: {host: b}, weight: -1}]}]}`, "spec.http[0].route[0].weight", "out of range"},
		{"vs weights sum", model.KindVirtualService, `{hosts: [a], http: [{route: [{destination: {host: b, subset: v1}, weight: 80}, {destination: {host: b, subset: v2}, weight: 30}]}]}`, "spec.http[0].route", "sum to 110, want 100"},
		{"vs weights unset with two destinations", model.KindVirtualService, `{hosts: [a], http: [{route: [` + dest + `, ` + dest + `]}]}`, "spec.http[0].route", "sum to 0"},
		{"vs bad uri regex", model.KindVirtualService, `{hosts: [a], http: [{match: [{uri: {regex: "(a"}}], route: [` + dest + `]}]}`, "spec.http[0].match[0].uri.regex", "invalid RE2 regex"},
		{"vs lookahead is not RE2", model.KindVirtualService, `{hosts: [a], http: [{route: [` + dest + `]}, {match: [{uri: {prefix: /}}, {authority: {regex: "a(?=b)"}}], route: [` + dest + `]}]}`, "spec.http[1].match[1].authority.regex", "invalid RE2 regex"},
		{"vs bad scheme regex", model.KindVirtualService, `{hosts: [a], http: [{match: [{scheme: {regex: "["}}], route: [` + dest + `]}]}`, "spec.http[0].match[0].scheme.regex", "regex"},
		{"vs bad method regex", model.KindVirtualService, `{hosts: [a], http: [{match: [{method: {regex: "*"}}], route: [` + dest + `]}]}`, "spec.http[0].match[0].method.regex", "regex"},
		{"vs bad header regex", model.KindVirtualService, `{hosts: [a], http: [{match: [{headers: {x-ok: {regex: ".*"}, x-user: {regex: "a("}}}], route: [` + dest + `]}]}`, "spec.http[0].match[0].headers[x-user].regex", "regex"},
		{"vs bad query regex", model.KindVirtualService, `{hosts: [a], http: [{match: [{queryParams: {q: {regex: "(?P<"}}}], route: [` + dest + `]}]}`, "spec.http[0].match[0].queryParams[q].regex", "regex"},
		{"vs bad withoutHeaders regex", model.KindVirtualService, `{hosts: [a], http: [{match: [{withoutHeaders: {h: {regex: ")"}}}], route: [` + dest + `]}]}`, "spec.http[0].match[0].withoutHeaders[h].regex", "regex"},
		{"vs delegate without name", model.KindVirtualService, `{hosts: [a], http: [{delegate: {namespace: x}}]}`, "spec.http[0].delegate.name", "required"},
		{"vs bad redirect code", model.KindVirtualService, `{hosts: [a], http: [{redirect: {uri: /x, redirectCode: 200}}]}`, "spec.http[0].redirect.redirectCode", "200"},
		{"vs bad direct status", model.KindVirtualService, `{hosts: [a], http: [{directResponse: {status: 99}}]}`, "spec.http[0].directResponse.status", "99"},
		{"vs negative retries", model.KindVirtualService, `{hosts: [a], http: [{route: [` + dest + `], retries: {attempts: -1}}]}`, "spec.http[0].retries.attempts", "negative"},
		{"vs mirror without host", model.KindVirtualService, `{hosts: [a], http: [{route: [` + dest + `], mirror: {subset: v1}}]}`, "spec.http[0].mirror.host", "required"},
		{"vs mirror percentage", model.KindVirtualService, `{hosts: [a], http: [{route: [` + dest + `], mirrorPercentage: {value: 150}}]}`, "spec.http[0].mirrorPercentage.value", "150"},
		{"vs fault percentage", model.KindVirtualService, `{hosts: [a], http: [{route: [` + dest + `], fault: {abort: {httpStatus: 503, percentage: {value: -5}}}}]}`, "spec.http[0].fault.abort.percentage.value", "out of range"},
		{"vs destination port", model.KindVirtualService, `{hosts: [a], http: [{route: [{destination: {host: b, port: {number: 70000}}}]}]}`, "spec.http[0].route[0].destination.port.number", "70000"},
		{"vs tcp without route", model.KindVirtualService, `{hosts: [a], tcp: [{match: [{port: 5432}]}]}`, "spec.tcp[0].route", "at least one route destination"},
		{"vs tcp weights", model.KindVirtualService, `{hosts: [a], tcp: [{route: [{destination: {host: b}, weight: 50}, {destination: {host: c}, weight: 40}]}]}`, "spec.tcp[0].route", "sum to 90"},
		{"vs tls without match", model.KindVirtualService, `{hosts: [a], tls: [{route: [` + dest + `]}]}`, "spec.tls[0].match", "sniHosts"},
		{"vs tls without sni", model.KindVirtualService, `{hosts: [a], tls: [{match: [{port: 443}], route: [` + dest + `]}]}`, "spec.tls[0].match[0].sniHosts", "SNI"},
		{"vs tls without destination host", model.KindVirtualService, `{hosts: [a], tls: [{match: [{sniHosts: [a]}], route: [{destination: {subset: x}}]}]}`, "spec.tls[0].route[0].destination.host", "required"},

		// DestinationRule
		{"dr no host", model.KindDestinationRule, `{subsets: [{name: v1}]}`, "spec.host", "host is required"},
		{"dr subset without name", model.KindDestinationRule, `{host: r, subsets: [{name: v1}, {labels: {version: v2}}]}`, "spec.subsets[1].name", "name is required"},
		{"dr duplicate subset", model.KindDestinationRule, `{host: r, subsets: [{name: v1}, {name: v2}, {name: v1}]}`, "spec.subsets[2].name", `duplicate subset name "v1" (also spec.subsets[0])`},
		{"dr empty label key", model.KindDestinationRule, `{host: r, subsets: [{name: v1, labels: {"": x}}]}`, "spec.subsets[0].labels", "must not be empty"},
		{"dr negative max connections", model.KindDestinationRule, `{host: r, trafficPolicy: {connectionPool: {tcp: {maxConnections: -1}}}}`, "spec.trafficPolicy.connectionPool.tcp.maxConnections", "negative"},
		{"dr subset policy", model.KindDestinationRule, `{host: r, subsets: [{name: v1, trafficPolicy: {outlierDetection: {maxEjectionPercent: 101}}}]}`, "spec.subsets[0].trafficPolicy.outlierDetection.maxEjectionPercent", "0-100"},
		{"dr port level port", model.KindDestinationRule, `{host: r, trafficPolicy: {portLevelSettings: [{connectionPool: {http: {maxRetries: 3}}}]}}`, "spec.trafficPolicy.portLevelSettings[0].port.number", "out of range"},
		{"dr port level limits", model.KindDestinationRule, `{host: r, trafficPolicy: {portLevelSettings: [{port: {number: 80}, connectionPool: {http: {http1MaxPendingRequests: -2}}}]}}`, "spec.trafficPolicy.portLevelSettings[0].connectionPool.http.http1MaxPendingRequests", "negative"},

		// ServiceEntry
		{"se no hosts", model.KindServiceEntry, `{ports: [{number: 80, name: http}]}`, "spec.hosts", "at least one host"},
		{"se star host", model.KindServiceEntry, `{hosts: [a.example, "*"], ports: [{number: 80, name: http}], resolution: NONE}`, "spec.hosts[1]", `"*" alone`},
		{"se port zero", model.KindServiceEntry, `{hosts: [a.example], ports: [{name: http}], resolution: DNS}`, "spec.ports[0].number", "out of range"},
		{"se port too big", model.KindServiceEntry, `{hosts: [a.example], ports: [{number: 65536, name: http}], resolution: DNS}`, "spec.ports[0].number", "65536"},
		{"se port without name", model.KindServiceEntry, `{hosts: [a.example], ports: [{number: 80}], resolution: DNS}`, "spec.ports[0].name", "name is required"},
		{"se duplicate port", model.KindServiceEntry, `{hosts: [a.example], ports: [{number: 80, name: a}, {number: 80, name: b}], resolution: DNS}`, "spec.ports[1].number", "duplicate port 80 (also spec.ports[0])"},
		{"se bad protocol", model.KindServiceEntry, `{hosts: [a.example], ports: [{number: 80, name: a, protocol: QUIC}], resolution: DNS}`, "spec.ports[0].protocol", "QUIC"},
		{"se static bad address", model.KindServiceEntry, `{hosts: [a.example], ports: [{number: 80, name: a}], resolution: STATIC, endpoints: [{address: 10.0.0.1}, {address: db.example}]}`, "spec.endpoints[1].address", "IP address"},
		{"se endpoint without address", model.KindServiceEntry, `{hosts: [a.example], ports: [{number: 80, name: a}], resolution: DNS, endpoints: [{ports: {a: 80}}]}`, "spec.endpoints[0].address", "required"},
		{"se endpoint port", model.KindServiceEntry, `{hosts: [a.example], ports: [{number: 80, name: a}], resolution: STATIC, endpoints: [{address: 10.0.0.1, ports: {a: 0}}]}`, "spec.endpoints[0].ports[a]", "out of range"},
		{"se none with endpoints", model.KindServiceEntry, `{hosts: [a.example], ports: [{number: 80, name: a}], resolution: NONE, endpoints: [{address: 10.0.0.1}]}`, "spec.endpoints", "resolution NONE"},
		{"se dns wildcard", model.KindServiceEntry, `{hosts: ["*.example.com"], ports: [{number: 80, name: a}], resolution: DNS}`, "spec.hosts[0]", "wildcard"},
		{"se selector and endpoints", model.KindServiceEntry, `{hosts: [a.example], ports: [{number: 80, name: a}], resolution: STATIC, workloadSelector: {labels: {app: x}}, endpoints: [{address: 10.0.0.1}]}`, "spec.workloadSelector", "cannot both"},

		// Sidecar
		{"sidecar egress without hosts", model.KindSidecar, `{egress: [{port: {number: 80, protocol: HTTP, name: http}}]}`, "spec.egress[0].hosts", "at least one host"},
		{"sidecar host without namespace", model.KindSidecar, `{egress: [{hosts: ["./*", "reviews.shop.svc.cluster.local"]}]}`, "spec.egress[0].hosts[1]", "namespace/dnsName"},
		{"sidecar bad namespace", model.KindSidecar, `{egress: [{hosts: ["Shop_1/*"]}]}`, "spec.egress[0].hosts[0]", "namespace"},
		{"sidecar empty dns name", model.KindSidecar, `{egress: [{hosts: ["shop/"]}]}`, "spec.egress[0].hosts[0]", "not a DNS name"},
		{"sidecar bad wildcard", model.KindSidecar, `{egress: [{hosts: ["shop/a.*.com"]}]}`, "spec.egress[0].hosts[0]", "not a DNS name"},
		{"sidecar catch-all not last", model.KindSidecar, `{egress: [{hosts: ["./*"]}, {port: {number: 80, name: http, protocol: HTTP}, hosts: ["./*"]}]}`, "spec.egress[0].port", "last egress listener"},
		{"sidecar ingress without port", model.KindSidecar, `{ingress: [{defaultEndpoint: "127.0.0.1:80"}]}`, "spec.ingress[0].port", "required"},

		// Gateway
		{"gw no servers", model.KindGateway, `{selector: {istio: ingressgateway}}`, "spec.servers", "at least one server"},
		{"gw server without port", model.KindGateway, `{servers: [{hosts: ["*"]}]}`, "spec.servers[0].port", "port is required"},
		{"gw server port zero", model.KindGateway, `{servers: [{port: {protocol: HTTP, name: http}, hosts: ["*"]}]}`, "spec.servers[0].port.number", "out of range"},
		{"gw bad protocol", model.KindGateway, `{servers: [{port: {number: 80, protocol: FTP, name: ftp}, hosts: ["*"]}]}`, "spec.servers[0].port.protocol", "FTP"},
		{"gw server without hosts", model.KindGateway, `{servers: [{port: {number: 80, protocol: HTTP, name: http}, hosts: ["*"]}, {port: {number: 81, protocol: HTTP, name: http2}}]}`, "spec.servers[1].hosts", "at least one host"},
		{"gw https without tls", model.KindGateway, `{servers: [{port: {number: 443, protocol: HTTPS, name: https}, hosts: ["*"]}]}`, "spec.servers[0].tls", "requires tls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := convertYAML(t, tt.kind, tt.spec)
			require.Error(t, err)
			assert.Nil(t, cfg)
			var oe *model.ObjectError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, tt.kind, oe.Kind)
			assert.Equal(t, "shop", oe.Namespace)
			assert.Equal(t, "obj", oe.Name)
			assert.Equal(t, tt.wantField, oe.Field)
			assert.Contains(t, oe.Message, tt.wantMsg)
		})
	}
}
