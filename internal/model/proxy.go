package model

import (
	"fmt"
	"net"
	"sort"
	"strings"
)

// NodeType is the role of a proxy, the first field of an istiod node ID.
type NodeType string

// Node types istiod knows.
const (
	SidecarProxy NodeType = "sidecar"
	Router       NodeType = "router"
)

// GeneratorGRPC is the GENERATOR metadata value of proxyless gRPC clients.
const GeneratorGRPC = "grpc"

// Proxy is one xDS client, described by its istiod-style node ID and metadata.
type Proxy struct {
	// NodeID is the full node ID, e.g. "sidecar~10.1.2.3~pod.ns~ns.svc.cluster.local".
	NodeID    string
	Type      NodeType
	IPs       []string
	ID        string // "pod.ns"
	DNSDomain string // "ns.svc.cluster.local"
	Namespace string
	Labels    map[string]string
	// Generator is "grpc" for proxyless gRPC clients, "" for Envoy.
	Generator string
	// ServiceAccount is the SERVICE_ACCOUNT metadata (pilot-agent sets it):
	// the service account the proxy says it runs as; "" if not given.
	ServiceAccount string
	// Agent is true for an Envoy run by Istio's agent (pilot-agent), which
	// always sends its PROXY_CONFIG metadata: the agent serves the
	// workload certificate and root over the bootstrap's sds-grpc cluster,
	// so the proxy can terminate Istio mTLS.
	Agent bool
}

// ParseProxy parses an istiod node ID "type~ip~id~domain" plus node metadata
// (NAMESPACE, LABELS, GENERATOR, SERVICE_ACCOUNT, PROXY_CONFIG; other keys
// are ignored).
func ParseProxy(nodeID string, metadata map[string]any) (*Proxy, error) {
	parts := strings.Split(nodeID, "~")
	if len(parts) != 4 {
		return nil, fmt.Errorf("node ID %q: want 4 fields separated by '~' (type~ip~id~domain), got %d", nodeID, len(parts))
	}
	p := &Proxy{NodeID: nodeID, Type: NodeType(parts[0]), ID: parts[2], DNSDomain: parts[3]}
	if p.Type != SidecarProxy && p.Type != Router {
		return nil, fmt.Errorf("node ID %q: unknown proxy type %q (want sidecar or router)", nodeID, parts[0])
	}
	for _, ip := range strings.Split(parts[1], ",") {
		if net.ParseIP(ip) == nil {
			return nil, fmt.Errorf("node ID %q: %q is not an IP address", nodeID, ip)
		}
		p.IPs = append(p.IPs, ip)
	}
	if p.ID == "" {
		return nil, fmt.Errorf("node ID %q: empty proxy id", nodeID)
	}
	if ns, ok := metadata["NAMESPACE"].(string); ok && ns != "" {
		p.Namespace = ns
	} else if i := strings.LastIndexByte(p.ID, '.'); i >= 0 && i < len(p.ID)-1 {
		p.Namespace = p.ID[i+1:]
	} else if i := strings.IndexByte(p.DNSDomain, '.'); i > 0 {
		p.Namespace = p.DNSDomain[:i]
	}
	if p.Namespace == "" {
		return nil, fmt.Errorf("node ID %q: cannot tell the proxy's namespace (set NAMESPACE metadata)", nodeID)
	}
	if g, ok := metadata["GENERATOR"].(string); ok {
		p.Generator = g
	}
	if sa, ok := metadata["SERVICE_ACCOUNT"].(string); ok {
		p.ServiceAccount = sa
	}
	_, p.Agent = metadata["PROXY_CONFIG"].(map[string]any)
	if labels, ok := metadata["LABELS"].(map[string]any); ok {
		p.Labels = make(map[string]string, len(labels))
		for k, v := range labels {
			if s, ok := v.(string); ok {
				p.Labels[k] = s
			}
		}
	}
	return p, nil
}

// Scope is what a proxy's config depends on. Proxies with equal Scopes receive
// identical config, so it is built and serialised once per Scope. Pods of one
// ReplicaSet share labels, hence a scope.
type Scope struct {
	Type      NodeType
	Generator string
	Namespace string
	// Labels is the proxy's workload labels in canonical form (CanonicalLabels),
	// for inbound listeners, sourceLabels matches and workload selectors.
	Labels string
	// Agent is Proxy.Agent: the proxy has the agent's SDS, so its inbound
	// side terminates Istio mTLS (istiod's PERMISSIVE default).
	Agent bool
}

// Scope returns the proxy's scope.
func (p *Proxy) Scope() Scope {
	return Scope{Type: p.Type, Generator: p.Generator, Namespace: p.Namespace, Labels: CanonicalLabels(p.Labels),
		Agent: p.Agent && p.Generator != GeneratorGRPC}
}

// LabelMap returns the scope's labels as a map (nil when there are none).
func (s Scope) LabelMap() map[string]string {
	if s.Labels == "" {
		return nil
	}
	out := map[string]string{}
	for _, kv := range strings.Split(s.Labels, ",") {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}

// CanonicalLabels renders labels as sorted "k=v" pairs joined by ",".
// pod-template-hash is left out so that pods of successive ReplicaSets of a
// Deployment share a scope.
func CanonicalLabels(labels map[string]string) string {
	keys := make([]string, 0, len(labels))
	for k := range labels {
		if k != "pod-template-hash" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k + "=" + labels[k])
	}
	return b.String()
}

// agentKeySuffix ends the key of an Agent scope.
const agentKeySuffix = "|agent"

// Key returns a stable string form, used as the cache key of the scope:
// type|generator|namespace|labels, and |agent for an Agent scope.
func (s Scope) Key() string {
	g := s.Generator
	if g == "" {
		g = "envoy"
	}
	k := string(s.Type) + "|" + g + "|" + s.Namespace + "|" + s.Labels
	if s.Agent {
		k += agentKeySuffix
	}
	return k
}

// ParseScopeKey is the inverse of Scope.Key; the labels part is optional.
func ParseScopeKey(key string) (Scope, error) {
	trimmed, agent := strings.CutSuffix(key, agentKeySuffix)
	parts := strings.Split(trimmed, "|")
	if len(parts) != 3 && len(parts) != 4 || agent && len(parts) != 4 {
		return Scope{}, fmt.Errorf("scope key %q: want type|generator|namespace[|labels[|agent]]", key)
	}
	s := Scope{Type: NodeType(parts[0]), Generator: parts[1], Namespace: parts[2], Agent: agent}
	if len(parts) == 4 {
		s.Labels = parts[3]
	}
	if s.Generator == "envoy" {
		s.Generator = ""
	}
	return s, nil
}
