package model

import (
	"fmt"
	"strings"
	"time"
)

// Protocol is the application protocol of a service port, chosen the way istiod
// chooses it (port name prefix or appProtocol).
type Protocol string

// Protocols meshd distinguishes.
const (
	ProtocolHTTP    Protocol = "HTTP"
	ProtocolHTTP2   Protocol = "HTTP2"
	ProtocolGRPC    Protocol = "GRPC"
	ProtocolGRPCWeb Protocol = "GRPC-Web"
	ProtocolHTTPS   Protocol = "HTTPS"
	ProtocolTLS     Protocol = "TLS"
	ProtocolTCP     Protocol = "TCP"
	ProtocolMongo   Protocol = "Mongo"
	ProtocolRedis   Protocol = "Redis"
	ProtocolMySQL   Protocol = "MySQL"
	// ProtocolUnsupported marks a port whose protocol could not be determined;
	// istiod treats such ports as TCP (with sniffing); meshd treats them as TCP.
	ProtocolUnsupported Protocol = "UnsupportedProtocol"
)

var protocolByName = map[string]Protocol{
	"http": ProtocolHTTP, "http2": ProtocolHTTP2, "grpc": ProtocolGRPC,
	"grpc-web": ProtocolGRPCWeb, "https": ProtocolHTTPS, "tls": ProtocolTLS,
	"tcp": ProtocolTCP, "mongo": ProtocolMongo, "redis": ProtocolRedis,
	"mysql": ProtocolMySQL, "kubernetes.io/h2c": ProtocolHTTP2,
}

// ParseProtocol maps an Istio/Kubernetes protocol or appProtocol name
// (case-insensitive) to a Protocol; unknown names give ProtocolUnsupported.
func ParseProtocol(s string) Protocol {
	if p, ok := protocolByName[strings.ToLower(s)]; ok {
		return p
	}
	return ProtocolUnsupported
}

// ProtocolFromPortName applies istiod's port naming convention: the name is
// "<protocol>" or "<protocol>-<suffix>" (case-insensitive). As in istiod, a
// name starting with "grpc-web" is gRPC-Web even without a dash after it.
func ProtocolFromPortName(name string) Protocol {
	lower := strings.ToLower(name)
	// grpc-web contains a dash itself, so it is checked before the split.
	if strings.HasPrefix(lower, "grpc-web") {
		return ProtocolGRPCWeb
	}
	if i := strings.IndexByte(lower, '-'); i >= 0 {
		lower = lower[:i]
	}
	return ParseProtocol(lower)
}

// GuessProtocol returns p, or istiod's guess from a well-known port number
// when p is ProtocolUnsupported (3306 is MySQL).
func GuessProtocol(p Protocol, port uint32) Protocol {
	if p == ProtocolUnsupported && port == 3306 {
		return ProtocolMySQL
	}
	return p
}

// IsHTTP reports whether traffic on the port is routed by an HTTP connection
// manager (HTTP/1.1, HTTP/2, gRPC, gRPC-Web).
func (p Protocol) IsHTTP() bool {
	switch p {
	case ProtocolHTTP, ProtocolHTTP2, ProtocolGRPC, ProtocolGRPCWeb:
		return true
	}
	return false
}

// Port is one port of a service.
type Port struct {
	Name     string   `json:"name,omitempty"`
	Port     uint32   `json:"port,omitempty"`
	Protocol Protocol `json:"protocol,omitempty"`
	// TargetPort is the workload port traffic to Port is sent to, when it is
	// known as a number (a Service's numeric targetPort, a ServiceEntry's
	// targetPort); 0 when unknown or named (endpoints then carry the number).
	TargetPort uint32 `json:"targetPort,omitempty"`
}

// Resolution says how a service's endpoints are found.
type Resolution int

// Resolutions.
const (
	// ResolutionEDS: endpoints come from the registry and are served over EDS.
	ResolutionEDS Resolution = iota
	// ResolutionDNS: the proxy resolves the endpoint hostnames (STRICT_DNS).
	ResolutionDNS
	// ResolutionDNSRoundRobin: LOGICAL_DNS.
	ResolutionDNSRoundRobin
	// ResolutionPassthrough: original destination, no endpoints known.
	ResolutionPassthrough
)

var resolutionNames = map[Resolution]string{
	ResolutionEDS: "EDS", ResolutionDNS: "DNS", ResolutionDNSRoundRobin: "DNS_ROUND_ROBIN", ResolutionPassthrough: "PASSTHROUGH",
}

// String names the resolution as /debug/registryz shows it.
func (r Resolution) String() string {
	if n, ok := resolutionNames[r]; ok {
		return n
	}
	return fmt.Sprintf("Resolution(%d)", int(r))
}

// MarshalText makes JSON views show the name.
func (r Resolution) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// Service is a named, addressable set of ports backed by endpoints: a
// Kubernetes Service or one host of a ServiceEntry.
type Service struct {
	// Hostname is the fully qualified name, e.g. "reviews.bookinfo.svc.cluster.local".
	Hostname  string            `json:"hostname,omitempty"`
	Name      string            `json:"name,omitempty"`
	Namespace string            `json:"namespace,omitempty"`
	Ports     []Port            `json:"ports,omitempty"` // sorted by Port
	VIPs      []string          `json:"vips,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Selector picks the workloads (pods) backing the service, if any.
	Selector map[string]string `json:"selector,omitempty"`
	// ExportTo lists the namespaces that may see the service ("*" all, "." own);
	// empty means the mesh default (all).
	ExportTo     []string   `json:"exportTo,omitempty"`
	MeshExternal bool       `json:"meshExternal,omitempty"`
	Resolution   Resolution `json:"resolution,omitempty"`
	CreatedAt    time.Time  `json:"createdAt,omitzero"`
	// Origin is the kind of object the service came from (Service or ServiceEntry).
	Origin Kind `json:"origin,omitempty"`
	// EntryName is the name of the ServiceEntry a service of Origin
	// ServiceEntry came from (its Name is the host).
	EntryName string `json:"entryName,omitempty"`
}

// PortByNumber returns the service port with the given number.
func (s *Service) PortByNumber(n uint32) (Port, bool) {
	for _, p := range s.Ports {
		if p.Port == n {
			return p, true
		}
	}
	return Port{}, false
}

// Namespace is a Kubernetes namespace as the mesh sees it.
type Namespace struct {
	Name   string            `json:"name,omitempty"`
	Labels map[string]string `json:"labels,omitempty"`
}

// Workload is a pod (or other workload instance) whose labels and service
// account endpoints inherit.
type Workload struct {
	Name           string            `json:"name,omitempty"`
	Namespace      string            `json:"namespace,omitempty"`
	IP             string            `json:"ip,omitempty"`
	Labels         map[string]string `json:"labels,omitempty"`
	ServiceAccount string            `json:"serviceAccount,omitempty"`
	Locality       string            `json:"locality,omitempty"`
}
