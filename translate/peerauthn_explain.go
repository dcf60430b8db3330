package translate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/meshd/meshd/internal/model"
)

// PeerAuthnExplanation is the PeerAuthentication in force for a sidecar's
// workload and what its inbound listener (virtualInbound) does with it,
// part of /debug/sidecarz.
type PeerAuthnExplanation struct {
	// Mesh, Namespace and Workload name ("namespace/name") the policy that
	// applied at each level, if any.
	Mesh      string `json:"mesh,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Workload  string `json:"workload,omitempty"`
	// Mode is the workload's mode: its passthrough chains', and every
	// port's without a port-level one.
	Mode string `json:"mode"`
	// Agent says whether the proxy can terminate Istio mTLS (run by
	// Istio's agent, which serves the workload certificate).
	Agent bool `json:"agent"`
	// Ports are the ports served by a service of the workload, and those
	// of the workload policy's portLevelMtls, sorted.
	Ports []PortMTLSExplanation `json:"ports,omitempty"`
	// OtherPorts is what the passthrough chains accept on other ports.
	OtherPorts string `json:"otherPorts"`
	// Warning says when STRICT cannot be honoured: the proxy has no
	// certificate, so connections to those ports are refused.
	Warning string `json:"warning,omitempty"`
}

// PortMTLSExplanation is one inbound port's mode and what it accepts.
type PortMTLSExplanation struct {
	Port uint32 `json:"port"`
	Mode string `json:"mode"`
	// Inbound is "mTLS or plaintext", "mTLS only", "plaintext only" or
	// "refused (STRICT without Istio's agent: no certificate)".
	Inbound string `json:"inbound"`
	// Passthrough is set for a port of portLevelMtls no service declares
	// (served by passthrough chains of its own).
	Passthrough bool `json:"passthrough,omitempty"`
}

// What an inbound port accepts.
const (
	acceptsBoth      = "mTLS or plaintext"
	acceptsMTLS      = "mTLS only"
	acceptsPlaintext = "plaintext only"
	acceptsNothing   = "refused (STRICT without Istio's agent: no certificate)"
)

// explainPeerAuthn explains a sidecar scope's PeerAuthentication; nil
// when none applies (istiod's default, PERMISSIVE) and for gateways and
// proxyless gRPC, which have no inbound listener.
func (b *builder) explainPeerAuthn() *PeerAuthnExplanation {
	if b.scope.Type != model.SidecarProxy || b.grpc {
		return nil
	}
	policy, in := b.workloadPeerPolicy(), b.inboundSide()
	if policy.mesh == nil && policy.namespace == nil && policy.workload == nil {
		return nil
	}
	e := &PeerAuthnExplanation{Mesh: configKey(policy.mesh), Namespace: configKey(policy.namespace),
		Workload: configKey(policy.workload), Mode: policy.mode.String(), Agent: in.agent}
	var refused []string
	for _, p := range in.ports {
		e.Ports = append(e.Ports, PortMTLSExplanation{Port: p.target, Mode: p.mode.String(), Inbound: accepts(p.mode, in.agent)})
	}
	for _, pt := range in.passthrough {
		if pt.port == 0 {
			e.OtherPorts = accepts(pt.mode, in.agent)
			continue
		}
		e.Ports = append(e.Ports, PortMTLSExplanation{Port: pt.port, Mode: pt.mode.String(),
			Inbound: accepts(pt.mode, in.agent), Passthrough: true})
	}
	slices.SortFunc(e.Ports, func(a, b PortMTLSExplanation) int { return cmp.Compare(a.Port, b.Port) })
	for _, p := range e.Ports {
		if p.Inbound == acceptsNothing {
			refused = append(refused, fmt.Sprint(p.Port))
		}
	}
	if e.OtherPorts == acceptsNothing {
		refused = append(refused, "every other port")
	}
	if len(refused) > 0 {
		e.Warning = "STRICT mTLS cannot be served by a proxy without Istio's agent (no workload certificate): " +
			"connections to " + strings.Join(refused, ", ") + " are refused; run the sidecar with pilot-agent, " +
			"or set PERMISSIVE or DISABLE for this workload"
	}
	return e
}

// accepts says what a port of mode accepts.
func accepts(mode mtlsMode, agent bool) string {
	switch {
	case mode == mtlsDisable, mode == mtlsPermissive && !agent:
		return acceptsPlaintext
	case mode == mtlsPermissive:
		return acceptsBoth
	case agent:
		return acceptsMTLS
	}
	return acceptsNothing
}

// configKey is "namespace/name" of cfg, "" when nil.
func configKey(cfg *model.Config) string {
	if cfg == nil {
		return ""
	}
	return cfg.Key()
}
