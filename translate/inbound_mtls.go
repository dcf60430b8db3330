package translate

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Inbound Istio mTLS, as istiod builds it (pilot/pkg/networking/core/
// listener_inbound.go with filterchain_options.go's match options) for the
// workload ports of a proxy whose agent serves the workload certificate
// over sds-grpc (model.Scope.Agent): a chain terminating mTLS with the SDS
// certificate "default", requiring a client certificate chaining to
// "ROOTCA" with a SPIFFE URI, and then serving the port as the plaintext
// chain does; HTTP gets istiod's x-forwarded-client-cert (APPEND_FORWARD
// with the peer's subject, URI and DNS SANs). Which chains a port gets is
// its PeerAuthentication mode's (peerauthn_inbound.go):
//   - PERMISSIVE (istiod's default): this chain, named <chain>_mtls and
//     matching TLS with one of Istio's ALPNs (what an ISTIO_MUTUAL client
//     offers, upstreamtls.go), before the plaintext chain, which takes
//     plaintext and other TLS;
//   - STRICT: this chain alone, named as istiod names it (0.0.0.0_<port>)
//     and matching any TLS (istiod's inboundStrict*FilterChainMatchOptions):
//     plaintext to the port matches no chain and Envoy closes it.
//
// The TLS inspector reads the ALPN only on ports with such a chain; like
// istiod's, it waits for the client's first bytes, so a server-first
// protocol on such a port waits too.

// istioMTLSALPNs are the ALPNs of Istio's mTLS clients, istiod's
// allIstioMtlsALPNs.
var istioMTLSALPNs = []string{"istio-peer-exchange", "istio", "istio-http/1.0", "istio-http/1.1", "istio-h2"}

// Downstream ALPNs the mTLS chains offer, as istiod's: HTTP ports h2 and
// HTTP/1.1, others the metadata exchange too.
var (
	inboundHTTPALPNs = []string{"h2", "http/1.1"}
	inboundTCPALPNs  = []string{"istio-peer-exchange", "h2", "http/1.1"}
)

const (
	tlsTransport    = "tls"
	spiffePrefix    = "spiffe://"
	mtlsChainSuffix = "_mtls"
)

// inboundMTLSChain terminates Istio mTLS on p's port and serves it as its
// plaintext chain does: for a STRICT port the port's only chain, else the
// one before the plaintext chain.
func inboundMTLSChain(p inboundPort) *listener.FilterChain {
	name := OutboundListenerName("0.0.0.0", p.target)
	match := &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(p.target), TransportProtocol: tlsTransport}
	if p.mode != mtlsStrict {
		name += mtlsChainSuffix
		match.ApplicationProtocols = istioMTLSALPNs
	}
	alpns, f := inboundTCPALPNs, inboundPortFilter(p)
	if p.protocol.IsHTTP() {
		alpns, f = inboundHTTPALPNs, hcmFilter(withXFCC(inboundPortHCM(p)))
	}
	return &listener.FilterChain{Name: name, FilterChainMatch: match, TransportSocket: inboundMTLSSocket(alpns),
		Filters: []*listener.Filter{f}}
}

// withXFCC sets istiod's x-forwarded-client-cert handling on an HTTP
// connection manager behind mTLS, and returns it.
func withXFCC(m *hcm.HttpConnectionManager) *hcm.HttpConnectionManager {
	m.ForwardClientCertDetails = hcm.HttpConnectionManager_APPEND_FORWARD
	m.SetCurrentClientCertDetails = &hcm.HttpConnectionManager_SetCurrentClientCertDetails{
		Subject: wrapperspb.Bool(true), Uri: true, Dns: true}
	return m
}

// inboundMTLSSocket terminates Istio mTLS offering alpns downstream.
func inboundMTLSSocket(alpns []string) *core.TransportSocket {
	return &core.TransportSocket{Name: tlsSocketName,
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(inboundMTLSContext(alpns))}}
}

// inboundMTLSContext requires a client certificate with a SPIFFE URI SAN
// chaining to the mesh root, and presents the workload certificate.
func inboundMTLSContext(alpns []string) *tlsv3.DownstreamTlsContext {
	return &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(true),
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols:                  alpns,
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{agentSDS(sdsDefault)},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext: &tlsv3.CertificateValidationContext{
						MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
							SanType: tlsv3.SubjectAltNameMatcher_URI,
							Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: spiffePrefix}},
						}},
					},
					ValidationContextSdsSecretConfig: agentSDS(sdsRootCA),
				},
			},
		},
	}
}
