package translate

import (
	"strings"
	"sync"

	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// sharedValues memoises, for one Index, the resource values that come out
// the same in several views or scopes: a virtual host or cluster of a
// service is identical in every namespace's view that sees the service
// through the same VirtualService and DestinationRule, and the inbound side
// of every workload serving the same ports is identical too. Building them
// once per Index and sharing the very values lets validation and
// marshalling (memoised per value) happen once as well; at 1,000 services
// in 20 namespaces a view's routes and clusters are then translated once,
// not 20 times. Each key holds everything the value is built from beyond
// the Index itself.
type sharedValues struct{ m sync.Map }

// get returns the value for key, building it with build on first use.
// Builders racing on one key may both build; the first stored wins, and
// both return it.
func (s *sharedValues) get(key any, build func() any) any {
	if v, ok := s.m.Load(key); ok {
		return v
	}
	v, _ := s.m.LoadOrStore(key, build())
	return v
}

// share returns the shared value for key: from the carried stores when
// the key's value is carried from Index to Index (carry.go), else from
// this Index's memo.
func (x *Index) share(key any, build func() any) any {
	if m := x.carry.store(key); m != nil && x.indexed(key) {
		return x.carry.get(m, key, build)
	}
	return x.shared.get(key, build)
}

// indexed reports whether a carried key's service is the Index's own
// object for its host, not a copy made for one view (a Sidecar's egress
// ports, portFilter.apply), which no later Index would ask for again.
func (x *Index) indexed(key any) bool {
	svc := keyService(key)
	return svc != nil && x.byHost[svc.Hostname] == svc
}

// keyService is the service a carried value's key names, nil for other
// keys.
func keyService(key any) *model.Service {
	switch k := key.(type) {
	case vhostKey:
		return k.svc
	case clusterKey:
		return k.svc
	}
	return nil
}

// vhostKey is what a sidecar's virtual host is built from: the service
// and port, the VirtualService that applies (nil: the default route),
// whether the scope is proxyless gRPC, whether it is of the service's
// namespace (short host names), the domains left when earlier services
// took some (else ""), and — only when the VirtualService has matches on
// sourceLabels or sourceNamespace — the scope's namespace and labels.
type vhostKey struct {
	svc               *model.Service
	port              uint32
	vs                *virtualService
	grpc, own         bool
	namespace, labels string
	domains           string
}

// clusterKey is what an outbound cluster is built from: the service and
// port, the cluster name (it names the subset), whether the scope is
// proxyless gRPC, and the DestinationRule that applies in the scope's
// namespace.
type clusterKey struct {
	svc  *model.Service
	port model.Port
	name string
	grpc bool
	rule *destRule
	// autoMTLS: the scope's clusters originate Istio mTLS to endpoints
	// with a sidecar (automtls.go).
	autoMTLS bool
}

// svcClustersKey names the clusters of every port (and subset of the rule)
// of a service for a scope: the service, whether the scope is proxyless
// gRPC, and the DestinationRule that applies in the scope's namespace.
type svcClustersKey struct {
	svc      *model.Service
	grpc     bool
	rule     *destRule
	autoMTLS bool
}

// outputKey names a sidecar scope's whole Output: its view and its
// inbound side (inboundSide.key: the workload's ports, protocols and
// PeerAuthentication modes, and the passthrough chains' modes).
type outputKey struct {
	view  *Output
	ports string
	mtls  bool // the proxy can terminate Istio mTLS (Scope.Agent)
}

// joinDomains is the domains' part of a vhostKey.
func joinDomains(domains []string) string { return strings.Join(domains, "\x00") }

// bySource reports whether an HTTP match of the VirtualService depends on
// the client (sourceLabels or sourceNamespace), so that its routes differ
// between scopes of one namespace or between namespaces.
func bySource(spec *networking.VirtualService) bool {
	for _, r := range spec.GetHttp() {
		for _, m := range r.GetMatch() {
			if len(m.GetSourceLabels()) > 0 || m.GetSourceNamespace() != "" {
				return true
			}
		}
	}
	return false
}
