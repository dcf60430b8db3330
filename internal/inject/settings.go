package inject

import (
	meshconfig "istio.io/api/mesh/v1alpha1"
)

// Settings are the mesh-wide inputs of Inject: what istiod takes from its
// values.yaml, mesh config and environment. The zero value is not usable;
// start from DefaultSettings.
type Settings struct {
	// ProxyImage is the istio-proxy and istio-init image.
	ProxyImage string `json:"proxyImage"`
	// MeshdImage is the image the job-wrap init container copies meshd from.
	MeshdImage string `json:"meshdImage"`
	// Revision is the control plane revision ("" is the default revision).
	Revision string `json:"revision,omitempty"`
	// DiscoveryAddress is the xDS and CA address of injected proxies
	// (PROXY_CONFIG discoveryAddress, CA_ADDR).
	DiscoveryAddress string `json:"discoveryAddress"`
	// Domain is the cluster DNS domain (cluster.local).
	Domain string `json:"domain"`
	// ClusterID is ISTIO_META_CLUSTER_ID.
	ClusterID string `json:"clusterID"`
	// TrustDomain is the mesh's trust domain (TRUST_DOMAIN and, as istio
	// without global.meshID, ISTIO_META_MESH_ID).
	TrustDomain string `json:"trustDomain"`
	// CNI: Istio's CNI plugin sets up interception (istio-validation).
	CNI bool `json:"cni,omitempty"`
	// NativeSidecars injects istio-proxy as a native sidecar (already
	// resolved from ENABLE_NATIVE_SIDECARS and the nodes).
	NativeSidecars bool `json:"nativeSidecars,omitempty"`
	// RewriteAppProbes rewrites app probes to pilot-agent's status port.
	RewriteAppProbes bool `json:"rewriteAppProbes"`
	// Mesh is the mesh config in force (defaultConfig, trustDomain,
	// enablePrometheusMerge); nil means istio's defaults.
	Mesh *meshconfig.MeshConfig `json:"-"`
}

// DefaultSettings returns istio's defaults, with proxyImage.
func DefaultSettings(proxyImage string) Settings {
	return Settings{
		ProxyImage:       proxyImage,
		DiscoveryAddress: "istiod.istio-system.svc:15012",
		Domain:           "cluster.local",
		ClusterID:        "Kubernetes",
		TrustDomain:      "cluster.local",
		RewriteAppProbes: true,
	}
}

// revisionName is the revision as istio writes it ("default" for none).
func (s Settings) revisionName() string {
	if s.Revision == "" {
		return "default"
	}
	return s.Revision
}

// trustDomain is the mesh config's trust domain, else the settings'.
func (s Settings) trustDomain() string {
	if td := s.Mesh.GetTrustDomain(); td != "" {
		return td
	}
	return s.TrustDomain
}

// prometheusMerge is the mesh's enablePrometheusMerge (default true).
func (s Settings) prometheusMerge() bool {
	if v := s.Mesh.GetEnablePrometheusMerge(); v != nil {
		return v.GetValue()
	}
	return true
}

// meshStatusPort is the mesh's default status port (15020), where istio
// points Prometheus at the merged metrics.
func (s Settings) meshStatusPort() uint32 {
	if port := s.Mesh.GetDefaultConfig().GetStatusPort(); port != 0 {
		return uint32(port)
	}
	return 15020
}
