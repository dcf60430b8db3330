package model

import (
	"google.golang.org/protobuf/proto"
	meshconfig "istio.io/api/mesh/v1alpha1"
)

// KindMeshConfig is the kind of the single mesh-wide settings object.
const KindMeshConfig Kind = "MeshConfig"

// MeshConfigKey is the namespace/name the mesh config is stored under.
const MeshConfigKey = "/mesh"

// MeshConfig holds istiod's mesh-wide settings (the "mesh" key of the istio
// ConfigMap, or a --mesh-config file), already defaulted. Spec must not be
// mutated.
type MeshConfig struct {
	Spec *meshconfig.MeshConfig
	// Source says where it was read from ("kube:istio-system/istio", a path).
	Source string
}

// DefaultMeshConfig returns istiod's defaults for the fields meshd uses.
func DefaultMeshConfig() *meshconfig.MeshConfig {
	return &meshconfig.MeshConfig{
		RootNamespace: "istio-system",
		OutboundTrafficPolicy: &meshconfig.MeshConfig_OutboundTrafficPolicy{
			Mode: meshconfig.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY,
		},
		AccessLogEncoding: meshconfig.MeshConfig_TEXT,
		DefaultConfig:     &meshconfig.ProxyConfig{},
	}
}

// WithDefaults returns a copy of m with unset fields meshd relies on filled
// from DefaultMeshConfig. Presence decides, not value: REGISTRY_ONLY is the
// zero value of Istio's outbound traffic mode, so a merge would lose it.
func WithDefaults(m *meshconfig.MeshConfig) *meshconfig.MeshConfig {
	def := DefaultMeshConfig()
	if m == nil {
		return def
	}
	out := proto.Clone(m).(*meshconfig.MeshConfig)
	if out.RootNamespace == "" {
		out.RootNamespace = def.RootNamespace
	}
	if out.OutboundTrafficPolicy == nil {
		out.OutboundTrafficPolicy = def.OutboundTrafficPolicy
	}
	if out.DefaultConfig == nil {
		out.DefaultConfig = def.DefaultConfig
	}
	return out
}

// MeshConfig returns the mesh config in force (defaults when none was given).
func (s *Snapshot) MeshConfig() *meshconfig.MeshConfig {
	if o, ok := s.objects[KindMeshConfig][MeshConfigKey]; ok {
		return o.(*MeshConfig).Spec
	}
	return DefaultMeshConfig()
}
