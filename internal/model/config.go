package model

import (
	"time"

	"google.golang.org/protobuf/proto"
)

// Kind names a kind of object that flows through the Store.
type Kind string

// Kinds. Registry kinds come from Kubernetes core/discovery APIs; config kinds
// are Istio networking and security API objects.
const (
	KindNamespace       Kind = "Namespace"
	KindService         Kind = "Service"
	KindEndpointSlice   Kind = "EndpointSlice"
	KindPod             Kind = "Pod"
	KindVirtualService  Kind = "VirtualService"
	KindDestinationRule Kind = "DestinationRule"
	KindGateway         Kind = "Gateway"
	KindServiceEntry    Kind = "ServiceEntry"
	KindSidecar         Kind = "Sidecar"
	// KindPeerAuthentication is security.istio.io's PeerAuthentication
	// (the inbound mTLS mode of workloads).
	KindPeerAuthentication Kind = "PeerAuthentication"
	// KindAuthorizationPolicy is security.istio.io's AuthorizationPolicy
	// (access rules on workloads' inbound traffic, Envoy RBAC).
	KindAuthorizationPolicy Kind = "AuthorizationPolicy"
	// KindRequestAuthentication is security.istio.io's
	// RequestAuthentication (JWT validation on workloads' inbound HTTP).
	KindRequestAuthentication Kind = "RequestAuthentication"
)

// ConfigKinds lists the Istio config kinds, in a stable order.
var ConfigKinds = []Kind{KindAuthorizationPolicy, KindDestinationRule, KindGateway, KindPeerAuthentication,
	KindRequestAuthentication, KindServiceEntry, KindSidecar, KindVirtualService}

// IsConfig reports whether k is an Istio config kind (held as a *Config).
func (k Kind) IsConfig() bool {
	for _, c := range ConfigKinds {
		if c == k {
			return true
		}
	}
	return false
}

// Config is one Istio networking or security object. Spec holds the
// istio.io/api proto (for example *networking.VirtualService, or
// *security.PeerAuthentication of istio.io/api/security/v1beta1) and must
// not be mutated.
type Config struct {
	Kind        Kind
	Name        string
	Namespace   string
	Labels      map[string]string
	Annotations map[string]string
	CreatedAt   time.Time
	// Source says where the object came from: "file.yaml#2" or "kube".
	Source string
	Spec   proto.Message
}

// Key returns "namespace/name".
func (c *Config) Key() string { return c.Namespace + "/" + c.Name }

// ObjectError reports a problem with one user object. It names the object and,
// where known, the field, so an operator can fix it.
type ObjectError struct {
	Kind      Kind   `json:"kind,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
	// Source is the file and document ("dir/a.yaml#2") or "kube".
	Source  string `json:"source,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// Error formats the error with every identifying detail known.
func (e ObjectError) Error() string {
	s := string(e.Kind)
	if s == "" {
		s = "object"
	}
	if e.Name != "" {
		s += " " + e.Namespace + "/" + e.Name
	}
	if e.Source != "" {
		s += " (" + e.Source + ")"
	}
	if e.Field != "" {
		s += " field " + e.Field
	}
	return s + ": " + e.Message
}
