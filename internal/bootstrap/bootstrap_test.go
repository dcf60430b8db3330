package bootstrap

import (
	"encoding/json"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/meshd/meshd/internal/model"
)

// parseOutput reads a marshalled bootstrap back strictly: unknown fields
// are errors.
func parseOutput(t *testing.T, out []byte, format string) *bootstrapv3.Bootstrap {
	t.Helper()
	js := out
	if format == FormatYAML {
		var err error
		js, err = yaml.YAMLToJSON(out)
		require.NoError(t, err)
	}
	b := &bootstrapv3.Bootstrap{}
	require.NoError(t, protojson.UnmarshalOptions{DiscardUnknown: false}.Unmarshal(js, b))
	require.NoError(t, b.ValidateAll())
	return b
}

// mustParse is Parse that must succeed.
func mustParse(t *testing.T, args ...string) *Options {
	t.Helper()
	o, err := Parse(args, env(nil), "host-1")
	require.NoError(t, err)
	return o
}

func TestGenerateRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name     string
		args     []string
		wantType model.NodeType
		wantAPI  core.ApiConfigSource_ApiType
	}{
		{"sidecar delta", []string{"--type", "sidecar", "--xds-api", "delta"}, model.SidecarProxy, core.ApiConfigSource_DELTA_GRPC},
		{"sidecar sotw", []string{"--xds-api", "sotw"}, model.SidecarProxy, core.ApiConfigSource_GRPC},
		{"router delta", []string{"--type", "router"}, model.Router, core.ApiConfigSource_DELTA_GRPC},
		{"router sotw", []string{"--type", "router", "--xds-api", "sotw"}, model.Router, core.ApiConfigSource_GRPC},
	} {
		for _, format := range []string{FormatYAML, FormatJSON} {
			t.Run(tc.name+" "+format, func(t *testing.T) {
				args := append([]string{"--namespace", "shop", "--pod-name", "frontend-1", "--format", format,
					"--labels", "app=frontend,version=1.0,canary=true,empty="}, tc.args...)
				o := mustParse(t, args...)
				out, err := Generate(o)
				require.NoError(t, err)
				again, err := Generate(o)
				require.NoError(t, err)
				require.Equal(t, string(out), string(again), "output is deterministic")

				b := parseOutput(t, out, format)
				built, err := Build(o)
				require.NoError(t, err)
				require.True(t, proto.Equal(built, b), "what is printed is what was built")

				ads := b.GetDynamicResources().GetAdsConfig()
				require.Equal(t, tc.wantAPI, ads.GetApiType())
				require.Equal(t, core.ApiVersion_V3, ads.GetTransportApiVersion())
				require.True(t, ads.GetSetNodeOnFirstMessageOnly())
				require.Equal(t, XDSClusterName, ads.GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName())
				for _, cs := range []*core.ConfigSource{b.GetDynamicResources().GetCdsConfig(), b.GetDynamicResources().GetLdsConfig()} {
					require.NotNil(t, cs.GetAds())
					require.Equal(t, core.ApiVersion_V3, cs.GetResourceApiVersion())
					require.Zero(t, cs.GetInitialFetchTimeout().AsDuration())
				}

				p, err := model.ParseProxy(b.GetNode().GetId(), b.GetNode().GetMetadata().AsMap())
				require.NoError(t, err)
				require.Equal(t, tc.wantType, p.Type)
				require.Equal(t, "shop", p.Namespace)
				require.Equal(t, []string{"127.0.0.1"}, p.IPs)
				require.Equal(t, "frontend-1.shop", p.ID)
				require.Equal(t, "shop.svc.cluster.local", p.DNSDomain)
				require.Equal(t, map[string]string{"app": "frontend", "version": "1.0", "canary": "true", "empty": ""}, p.Labels)
				require.Empty(t, p.Generator)
			})
		}
	}
}

func TestNodeMetadata(t *testing.T) {
	o := mustParse(t, "--type", "router", "--namespace", "istio-system", "--pod-name", "ingress-7c9f-abcde",
		"--ip", "10.1.2.3,10.1.2.4", "--labels", "istio=ingressgateway,pod-template-hash=7c9f",
		"--service-account", "ingress-sa", "--cluster-id", "dc1", "--mesh-id", "bank", "--istio-version", "1.30.1",
		"--locality", "eu-west1/b", "--generator", "api", "--stats-port", "16090", "--readiness-port", "16021")
	b, err := Build(o)
	require.NoError(t, err)
	n := b.GetNode()
	require.Equal(t, "router~10.1.2.3~ingress-7c9f-abcde.istio-system~istio-system.svc.cluster.local", n.GetId())
	require.Equal(t, "ingress.istio-system", n.GetCluster(), "no app label: <workload>.<namespace>")
	require.True(t, proto.Equal(&core.Locality{Region: "eu-west1", Zone: "b"}, n.GetLocality()))
	require.Equal(t, map[string]any{
		"NAMESPACE": "istio-system", "NAME": "ingress-7c9f-abcde", "CLUSTER_ID": "dc1", "ISTIO_VERSION": "1.30.1",
		"WORKLOAD_NAME": "ingress", "SERVICE_ACCOUNT": "ingress-sa", "MESH_ID": "bank",
		"INSTANCE_IPS": "10.1.2.3,10.1.2.4", "INTERCEPTION_MODE": "REDIRECT",
		"ENVOY_STATUS_PORT": float64(16021), "ENVOY_PROMETHEUS_PORT": float64(16090),
		"LABELS": map[string]any{"istio": "ingressgateway"}, "GENERATOR": "api",
	}, n.GetMetadata().AsMap())

	p, err := model.ParseProxy(n.GetId(), n.GetMetadata().AsMap())
	require.NoError(t, err)
	require.Equal(t, model.Router, p.Type)
	require.Equal(t, "istio-system", p.Namespace)
	require.Equal(t, map[string]string{"istio": "ingressgateway"}, p.Labels)
	require.Equal(t, "api", p.Generator)
}

func TestServiceCluster(t *testing.T) {
	for _, tc := range []struct {
		labels, want string
	}{
		{"", "host-1.shop"},
		{"app=frontend", "frontend.shop"},
		{"app.kubernetes.io/name=web", "web.shop"},
		{"service.istio.io/canonical-name=canon,app.kubernetes.io/name=web", "web.shop"},
		{"app=a,app.kubernetes.io/name=web", "a.shop"},
	} {
		o := mustParse(t, "--namespace", "shop", "--labels", tc.labels)
		require.Equal(t, tc.want, o.serviceCluster(), tc.labels)
	}
}

func TestNodeIDOverride(t *testing.T) {
	id := "sidecar~10.9.9.9~vm-1.legacy~legacy.svc.cluster.local"
	b, err := Build(mustParse(t, "--node-id", id, "--namespace", "legacy"))
	require.NoError(t, err)
	require.Equal(t, id, b.GetNode().GetId())
}

// staticParts returns the bootstrap's static clusters and listeners by name.
func staticParts(t *testing.T, b *bootstrapv3.Bootstrap) (map[string]*cluster.Cluster, map[string]*listener.Listener) {
	t.Helper()
	cs, ls := map[string]*cluster.Cluster{}, map[string]*listener.Listener{}
	for _, c := range b.GetStaticResources().GetClusters() {
		cs[c.GetName()] = c
	}
	for _, l := range b.GetStaticResources().GetListeners() {
		ls[l.GetName()] = l
	}
	return cs, ls
}

func TestXDSCluster(t *testing.T) {
	for _, tc := range []struct {
		name, addr, ips string
		wantType        cluster.Cluster_DiscoveryType
		wantFamily      cluster.Cluster_DnsLookupFamily
		wantHost        string
		wantPort        uint32
	}{
		{"ip", "10.0.0.2:15010", "127.0.0.1", cluster.Cluster_STATIC, cluster.Cluster_AUTO, "10.0.0.2", 15010},
		{"ipv6", "[fd00::2]:16010", "fd00::9", cluster.Cluster_STATIC, cluster.Cluster_AUTO, "fd00::2", 16010},
		{"dns v4", "meshd.istio-system.svc:15010", "10.1.1.1", cluster.Cluster_STRICT_DNS, cluster.Cluster_V4_ONLY, "meshd.istio-system.svc", 15010},
		{"dns v6", "meshd:15010", "fd00::9", cluster.Cluster_STRICT_DNS, cluster.Cluster_V6_ONLY, "meshd", 15010},
		{"dns dual", "meshd:15010", "10.1.1.1,fd00::9", cluster.Cluster_STRICT_DNS, cluster.Cluster_ALL, "meshd", 15010},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Build(mustParse(t, "--xds-address", tc.addr, "--ip", tc.ips))
			require.NoError(t, err)
			cs, _ := staticParts(t, b)
			c := cs[XDSClusterName]
			require.NotNil(t, c)
			require.Equal(t, tc.wantType, c.GetType())
			require.Equal(t, tc.wantFamily, c.GetDnsLookupFamily())
			sa := c.GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
			require.Equal(t, tc.wantHost, sa.GetAddress())
			require.Equal(t, tc.wantPort, sa.GetPortValue())
			require.Equal(t, "1s", c.GetConnectTimeout().AsDuration().String())
			require.Len(t, c.GetCircuitBreakers().GetThresholds(), 2)

			opts := &upstreamhttp.HttpProtocolOptions{}
			require.NoError(t, c.GetTypedExtensionProtocolOptions()[httpProtocolOptionsKey].UnmarshalTo(opts))
			ka := opts.GetExplicitHttpConfig().GetHttp2ProtocolOptions().GetConnectionKeepalive()
			require.Equal(t, "30s", ka.GetInterval().AsDuration().String())
			require.Equal(t, "10s", ka.GetTimeout().AsDuration().String())
		})
	}
}

func TestStaticListeners(t *testing.T) {
	for _, tc := range []struct {
		name, ips, adminAddr, wildcard, adminUpstream string
	}{
		{"ipv4", "10.0.0.1", "127.0.0.1", "0.0.0.0", "127.0.0.1"},
		{"ipv6", "fd00::1,10.0.0.1", "::1", "::", "::1"},
		{"admin on all interfaces", "10.0.0.1", "0.0.0.0", "0.0.0.0", "127.0.0.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Build(mustParse(t, "--ip", tc.ips, "--admin-address", tc.adminAddr, "--admin-port", "16000",
				"--stats-port", "16090", "--readiness-port", "16021"))
			require.NoError(t, err)
			require.Equal(t, tc.adminAddr, b.GetAdmin().GetAddress().GetSocketAddress().GetAddress())
			cs, ls := staticParts(t, b)
			for _, name := range []string{PrometheusClusterName, AdminClusterName} {
				sa := cs[name].GetLoadAssignment().GetEndpoints()[0].GetLbEndpoints()[0].GetEndpoint().GetAddress().GetSocketAddress()
				require.Equal(t, tc.adminUpstream, sa.GetAddress(), name)
				require.Equal(t, uint32(16000), sa.GetPortValue(), name)
			}
			for port, want := range map[uint32]struct{ cluster, path, rewrite string }{
				16090: {PrometheusClusterName, PrometheusPath, ""},
				16021: {AdminClusterName, ReadinessPath, "/ready"},
			} {
				l := ls[tc.wildcard+"_"+itoa(port)]
				require.NotNil(t, l, "listener %s_%d", tc.wildcard, port)
				require.Equal(t, tc.wildcard, l.GetAddress().GetSocketAddress().GetAddress())
				require.Equal(t, port, l.GetAddress().GetSocketAddress().GetPortValue())
				m := &hcm.HttpConnectionManager{}
				require.NoError(t, l.GetFilterChains()[0].GetFilters()[0].GetTypedConfig().UnmarshalTo(m))
				r := m.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[0]
				require.Equal(t, want.cluster, r.GetRoute().GetCluster())
				require.Equal(t, want.rewrite, r.GetRoute().GetPrefixRewrite())
				require.Contains(t, []string{r.GetMatch().GetPrefix(), r.GetMatch().GetPath()}, want.path)
			}
		})
	}
}

func itoa(n uint32) string { return (&portValue{p: &n}).String() }

// The default output is JSON, which is also YAML: Envoy reads a -c file
// without a .yaml/.yml extension as JSON (TestEnvoyAcceptsDefaultOutputWithoutExtension).
func TestDefaultFormatIsJSON(t *testing.T) {
	o := mustParse(t)
	require.Equal(t, FormatJSON, o.Format)
	out, err := Generate(o)
	require.NoError(t, err)
	require.True(t, json.Valid(out), "default output is JSON")
	require.True(t, proto.Equal(parseOutput(t, out, FormatJSON), parseOutput(t, out, FormatYAML)), "and reads the same as YAML")
}

func TestMarshalUnknownFormat(t *testing.T) {
	b, err := Build(mustParse(t))
	require.NoError(t, err)
	_, err = Marshal(b, "toml")
	require.ErrorContains(t, err, `unknown format "toml"`)
}
