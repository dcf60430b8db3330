package translate

import (
	"fmt"
	"strings"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/meshd/meshd/internal/model"
)

// The PeerAuthentication mode of each inbound port, mapped onto
// virtualInbound's filter chains as istiod's getFilterChainMatchOptions
// (pilot/pkg/networking/core/filterchain_options.go) does, for a proxy run
// by Istio's agent (model.Scope.Agent: its SDS serves the workload
// certificate):
//
//	mode        declared port                    passthrough (other ports)
//	PERMISSIVE  mTLS chain, then plaintext chain istiod's 5 permissive chains
//	STRICT      mTLS chain only                  HTTP and TCP over mTLS only
//	DISABLE     plaintext chain                  plaintext chains
//
// Under STRICT, plaintext to the port matches no chain of its destination
// port (Envoy does not fall back to the passthrough chains), so Envoy
// closes it, as with istiod.
//
// A proxy without the agent (meshd bootstrap) has no certificate to
// terminate mTLS with, a case istiod does not have. PERMISSIVE and DISABLE
// get the plaintext chains; STRICT fails closed: the port's chain (or the
// passthrough's, for the workload's mode) sends every connection to
// BlackHoleCluster, so nothing reaches the application unauthenticated.
// ExplainScope (/debug/sidecarz) says so for the scope.

// inboundSide is what a sidecar's inbound listener and clusters are built
// from: the workload's ports with their modes, the passthrough chains'
// ports and modes, and whether the proxy can terminate mTLS.
type inboundSide struct {
	ports       []inboundPort
	passthrough []passthroughPort
	agent       bool
	// authz holds the AuthorizationPolicies that apply to the workload
	// (authz.go), authzKey names them with their content.
	authz    []*model.Config
	authzKey string
	// jwt is the jwt_authn filter of the RequestAuthentications that
	// apply to the workload (authn_jwt.go), nil with none; jwtKey names
	// them with their content.
	jwt    *hcm.HttpFilter
	jwtKey string
}

// inboundSide returns the scope's inbound side under the PeerAuthentication
// in force for its workload: the passthrough chains are the workload's
// mode's, then one set per port of the workload policy's portLevelMtls that
// no service declares (istiod's ForPassthrough, needPerPortPassthroughFilterChain),
// sorted; the proxy's own ports excepted.
func (b *builder) inboundSide() inboundSide {
	policy := b.workloadPeerPolicy()
	in := inboundSide{ports: b.inboundPorts(policy), agent: b.scope.Agent,
		passthrough: []passthroughPort{{port: 0, mode: policy.mode}}, authz: b.workloadAuthz()}
	// The policy sets' names and content hashes: what they use beyond
	// that (ext_authz providers, JWKS) is Index-wide, and outputKeys are
	// memoised per Index.
	in.authzKey = b.x.authz().key(in.authz)
	in.jwt, in.jwtKey = b.x.jwtAuthn(b.workloadRequestAuthn(), false)
	declared := map[uint32]bool{}
	for _, p := range in.ports {
		declared[p.target] = true
	}
	for _, port := range policy.levelPorts() {
		if _, reserved := reservedPorts[port]; !declared[port] && !reserved {
			in.passthrough = append(in.passthrough, passthroughPort{port: port, mode: policy.perPort[port]})
		}
	}
	return in
}

// key is the part of an outputKey naming the inbound side: ports,
// protocols and modes (Scope.Agent is the outputKey's mtls), and the
// AuthorizationPolicies with their content.
func (in inboundSide) key() string {
	var k strings.Builder
	k.WriteString(portsKey(in.ports))
	for _, pt := range in.passthrough {
		fmt.Fprintf(&k, "|%d/%s", pt.port, pt.mode)
	}
	if in.authzKey != "" {
		k.WriteString("|authz:" + in.authzKey)
	}
	if in.jwtKey != "" {
		k.WriteString("|jwt:" + in.jwtKey)
	}
	return k.String()
}

// inboundPortChains are a workload port's chains for its mode.
func inboundPortChains(p inboundPort, agent bool) []*listener.FilterChain {
	switch {
	case p.mode == mtlsStrict && agent:
		return []*listener.FilterChain{inboundMTLSChain(p)}
	case p.mode == mtlsStrict:
		return []*listener.FilterChain{refuseChain(OutboundListenerName("0.0.0.0", p.target), p.target)}
	case p.mode == mtlsPermissive && agent:
		return []*listener.FilterChain{inboundMTLSChain(p), inboundPlaintextChain(p)}
	}
	return []*listener.FilterChain{inboundPlaintextChain(p)}
}

// passthroughChains are one passthrough port's chains for its mode.
func passthroughChains(pt passthroughPort, agent bool) []*listener.FilterChain {
	switch {
	case pt.mode == mtlsStrict && !agent:
		return []*listener.FilterChain{refuseChain(VirtualInboundListener, pt.port)}
	case pt.mode == mtlsDisable || !agent:
		return plaintextPassthroughChains(pt.port)
	}
	return passthroughMTLSChains(pt.port, pt.mode == mtlsStrict)
}

// refuseChain takes every connection to port (0: any port no other chain
// matches) and closes it: tcp_proxy to BlackHoleCluster, which has no
// endpoint. It stands for mTLS chains a proxy without certificate cannot
// have.
func refuseChain(name string, port uint32) *listener.FilterChain {
	fc := &listener.FilterChain{
		Name:             name,
		FilterChainMatch: &listener.FilterChainMatch{},
		Filters:          []*listener.Filter{tcpFilter(BlackHoleCluster, BlackHoleCluster)},
	}
	if port != 0 {
		fc.FilterChainMatch.DestinationPort = wrapperspb.UInt32(port)
	}
	return fc
}
