package translate

import (
	"fmt"

	meshconfig "istio.io/api/mesh/v1alpha1"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// ScopeExplanation says why a scope sees what it sees: the Sidecar that
// applies, the outbound traffic policy, the services and VirtualServices
// it sees (or not) and the DestinationRule it uses per visible host. It is
// the body of /debug/sidecarz and marshals to JSON as is.
type ScopeExplanation struct {
	// Scope is the scope key ("sidecar|envoy|shop|app=web").
	Scope                 string                    `json:"scope"`
	Sidecar               SidecarExplanation        `json:"sidecar"`
	OutboundTrafficPolicy OutboundPolicyExplanation `json:"outboundTrafficPolicy"`
	// Services lists every visible service, sorted by hostname.
	Services []ServiceExplanation `json:"services"`
	// HiddenServices lists the services of the mesh the scope does not see.
	HiddenServices  []ServiceExplanation        `json:"hiddenServices,omitempty"`
	VirtualServices []VirtualServiceExplanation `json:"virtualServices,omitempty"`
	// DestinationRules holds the rule chosen for each visible host that has one.
	DestinationRules []DestinationRuleExplanation `json:"destinationRules,omitempty"`
	// PeerAuthentication is the inbound mTLS in force, when a
	// PeerAuthentication applies (sidecars only; peerauthn_explain.go).
	PeerAuthentication *PeerAuthnExplanation `json:"peerAuthentication,omitempty"`
	// Authorization is the AuthorizationPolicies in force and their RBAC,
	// when one applies (sidecars only; authz_explain.go, also
	// /debug/authorizationz).
	Authorization *AuthzExplanation `json:"authorization,omitempty"`
}

// SidecarExplanation names the Sidecar resource that applies and why.
type SidecarExplanation struct {
	// Namespace and Name are empty when none applies.
	Namespace string        `json:"namespace,omitempty"`
	Name      string        `json:"name,omitempty"`
	Source    SidecarSource `json:"source"`
	// EgressHosts lists the egress hosts per listener ("8080: ./*", or "./*"
	// for a listener without port).
	EgressHosts []string `json:"egressHosts,omitempty"`
}

// OutboundPolicyExplanation is the outbound traffic policy in force.
type OutboundPolicyExplanation struct {
	// Mode is ALLOW_ANY or REGISTRY_ONLY.
	Mode string `json:"mode"`
	// Source is "Sidecar <namespace>/<name>" or "MeshConfig".
	Source string `json:"source"`
}

// ServiceExplanation is one service and why the scope sees it or not.
type ServiceExplanation struct {
	Hostname  string `json:"hostname"`
	Namespace string `json:"namespace"`
	// Ports are the ports the scope sees (a Sidecar egress port may limit them).
	Ports []uint32 `json:"ports,omitempty"`
	// Reason is the egress host that imports the service ("egress host ./*"),
	// "no Sidecar: exported to namespace", "destination of VirtualService
	// ns/name", or why it is hidden.
	Reason string `json:"reason"`
}

// VirtualServiceExplanation is one visible mesh VirtualService.
type VirtualServiceExplanation struct {
	Namespace string   `json:"namespace"`
	Name      string   `json:"name"`
	Hosts     []string `json:"hosts"`
	Reason    string   `json:"reason"`
}

// DestinationRuleExplanation is the DestinationRule used for one visible host.
type DestinationRuleExplanation struct {
	Host      string                `json:"host"`
	Namespace string                `json:"namespace"`
	Name      string                `json:"name"`
	Source    DestinationRuleSource `json:"source"`
}

// ExplainScope explains the configuration Build produces for scope. It is
// pure and cheap enough for a debug endpoint (one scope's visibility pass,
// no Envoy resources built).
func ExplainScope(x *Index, scope model.Scope) ScopeExplanation {
	b := newBuilder(x, scope)
	out := ScopeExplanation{
		Scope:                 scope.Key(),
		Sidecar:               b.sc.explain(),
		OutboundTrafficPolicy: b.explainOutboundPolicy(),
		Services:              []ServiceExplanation{},
		PeerAuthentication:    b.explainPeerAuthn(),
		Authorization:         b.explainAuthz(false),
	}
	for _, v := range b.scopeServices() {
		e := ServiceExplanation{Hostname: v.svc.Hostname, Namespace: v.svc.Namespace, Reason: v.reason}
		if !v.visible {
			out.HiddenServices = append(out.HiddenServices, e)
			continue
		}
		for _, p := range v.svc.Ports {
			e.Ports = append(e.Ports, p.Port)
		}
		out.Services = append(out.Services, e)
		if r, src := x.lookupDestinationRule(scope.Namespace, v.svc); r != nil {
			out.DestinationRules = append(out.DestinationRules, DestinationRuleExplanation{
				Host: v.svc.Hostname, Namespace: r.cfg.Namespace, Name: r.cfg.Name, Source: src})
		}
	}
	if scope.Type != model.Router || scope.Generator == model.GeneratorGRPC {
		for _, vs := range x.vsAll {
			if reason, _, ok := b.vsVisible(vs); ok {
				out.VirtualServices = append(out.VirtualServices, VirtualServiceExplanation{
					Namespace: vs.cfg.Namespace, Name: vs.cfg.Name, Hosts: vs.hosts, Reason: reason})
			}
		}
	}
	return out
}

func (s *sidecarScope) explain() SidecarExplanation {
	e := SidecarExplanation{Source: s.source}
	if s.cfg == nil {
		return e
	}
	e.Namespace, e.Name = s.cfg.Namespace, s.cfg.Name
	for _, l := range s.egress {
		for _, h := range l.hosts {
			if l.port != 0 {
				e.EgressHosts = append(e.EgressHosts, fmt.Sprintf("%d: %s", l.port, h.raw))
			} else {
				e.EgressHosts = append(e.EgressHosts, h.raw)
			}
		}
	}
	return e
}

func (b *builder) explainOutboundPolicy() OutboundPolicyExplanation {
	if p := b.sc.spec.GetOutboundTrafficPolicy(); p != nil {
		return OutboundPolicyExplanation{Mode: p.GetMode().String(), Source: "Sidecar " + b.sc.name()}
	}
	mode := meshconfig.MeshConfig_OutboundTrafficPolicy_ALLOW_ANY
	if p := b.x.snap.MeshConfig().GetOutboundTrafficPolicy(); p != nil {
		mode = p.GetMode()
	}
	return OutboundPolicyExplanation{Mode: networking.OutboundTrafficPolicy_Mode(mode).String(), Source: "MeshConfig"}
}
