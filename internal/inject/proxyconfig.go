package inject

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	meshconfig "istio.io/api/mesh/v1alpha1"
	"sigs.k8s.io/yaml"
)

// istioDefaultProxyConfig is istio's mesh.DefaultProxyConfig.
func istioDefaultProxyConfig() *meshconfig.ProxyConfig {
	return &meshconfig.ProxyConfig{
		ConfigPath:               "./etc/istio/proxy",
		ClusterName:              &meshconfig.ProxyConfig_ServiceCluster{ServiceCluster: "istio-proxy"},
		DrainDuration:            durationpb.New(45 * time.Second),
		TerminationDrainDuration: durationpb.New(5 * time.Second),
		ProxyAdminPort:           15000,
		ControlPlaneAuthPolicy:   meshconfig.AuthenticationPolicy_MUTUAL_TLS,
		DiscoveryAddress:         "istiod.istio-system.svc:15012",
		BinaryPath:               "/usr/local/bin/envoy",
		StatNameLength:           189,
		StatusPort:               15020,
	}
}

// proxyConfigFor returns the pod's ProxyConfig: istio's defaults, the mesh
// config's defaultConfig over them, meshd's discovery address, then the
// pod's proxy.istio.io/config annotation (YAML) merged over all that, as
// istiod's mesh.MergeProxyConfig (proxyMetadata merged key by key). An
// annotation that does not parse as a ProxyConfig is a Rejection.
func proxyConfigFor(annotations map[string]string, s Settings) (*meshconfig.ProxyConfig, error) {
	pc := istioDefaultProxyConfig()
	if m := s.Mesh.GetDefaultConfig(); m != nil {
		proto.Merge(pc, m)
	}
	if s.DiscoveryAddress != "" {
		pc.DiscoveryAddress = s.DiscoveryAddress
	}
	v, ok := annotations[AnnoProxyConfig]
	if !ok {
		return pc, nil
	}
	js, err := yaml.YAMLToJSON([]byte(v))
	if err != nil {
		return nil, Rejection(fmt.Sprintf("annotation %s: not valid YAML: %v", AnnoProxyConfig, err))
	}
	over := &meshconfig.ProxyConfig{}
	if string(js) != "null" {
		if err := protojson.Unmarshal(js, over); err != nil {
			return nil, Rejection(fmt.Sprintf("annotation %s: not a valid ProxyConfig: %s", AnnoProxyConfig, protoErr(err)))
		}
	}
	if over.GetStatusPort() > 65535 || over.GetProxyAdminPort() > 65535 {
		return nil, Rejection(fmt.Sprintf("annotation %s: statusPort and proxyAdminPort must be ports (0-65535)", AnnoProxyConfig))
	}
	proto.Merge(pc, over)
	return pc, nil
}

// protoErr is a protojson error without its deliberately unstable
// spacing and its "proto:" prefix.
func protoErr(err error) string {
	msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\u00a0", " ")), " ")
	return strings.TrimPrefix(msg, "proto: ")
}

// proxyConfigJSON renders pc for PROXY_CONFIG as istiod does: fields equal
// to istio's defaults left out (pilot-agent applies them; unlike istiod,
// discoveryAddress is always written, so the proxy names meshd
// explicitly), then JSON with sorted keys so the output is deterministic.
func proxyConfigJSON(pc *meshconfig.ProxyConfig) (string, error) {
	c := proto.Clone(pc).(*meshconfig.ProxyConfig)
	d := istioDefaultProxyConfig()
	if c.ConfigPath == d.ConfigPath {
		c.ConfigPath = ""
	}
	if c.BinaryPath == d.BinaryPath {
		c.BinaryPath = ""
	}
	if c.ControlPlaneAuthPolicy == d.ControlPlaneAuthPolicy {
		c.ControlPlaneAuthPolicy = 0
	}
	if sc, ok := c.GetClusterName().(*meshconfig.ProxyConfig_ServiceCluster); ok && sc.ServiceCluster == "istio-proxy" {
		c.ClusterName = nil
	}
	if proto.Equal(c.DrainDuration, d.DrainDuration) {
		c.DrainDuration = nil
	}
	if proto.Equal(c.TerminationDrainDuration, d.TerminationDrainDuration) {
		c.TerminationDrainDuration = nil
	}
	if c.ProxyAdminPort == d.ProxyAdminPort {
		c.ProxyAdminPort = 0
	}
	if c.StatNameLength == d.StatNameLength {
		c.StatNameLength = 0
	}
	if c.StatusPort == d.StatusPort {
		c.StatusPort = 0
	}
	b, err := protojson.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("marshalling ProxyConfig: %w", err)
	}
	var generic any // protojson's spacing is deliberately unstable: re-encode
	if err := json.Unmarshal(b, &generic); err != nil {
		return "", fmt.Errorf("re-encoding ProxyConfig: %w", err)
	}
	out, err := json.Marshal(generic)
	if err != nil {
		return "", fmt.Errorf("re-encoding ProxyConfig: %w", err)
	}
	return string(out), nil
}
