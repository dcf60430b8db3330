package translate

import (
	"fmt"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsinspector "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Inbound Istio mTLS, as istiod's default PERMISSIVE mode builds it
// (pilot/pkg/networking/core/listener_inbound.go with the mTLS filter
// chain match options) for the workload ports of a proxy whose agent
// serves the workload certificate over sds-grpc (model.Scope.Agent): before
// each port's plaintext chain, a chain matching TLS with one of Istio's
// ALPNs (what an ISTIO_MUTUAL client offers, upstreamtls.go) terminates
// mTLS with the SDS certificate "default", requires a client certificate
// chaining to "ROOTCA" with a SPIFFE URI, and then serves the port as the
// plaintext chain does; HTTP gets istiod's x-forwarded-client-cert
// (APPEND_FORWARD with the peer's subject, URI and DNS SANs). Plaintext and
// other TLS keep taking the plaintext chain (PERMISSIVE). Requiring mTLS
// (STRICT) is PeerAuthentication's, which meshd does not read yet.
//
// The TLS inspector reads the ALPN only on the workload's ports; like
// istiod's PERMISSIVE listener, it waits for the client's first bytes, so
// a server-first protocol on a declared port waits too.

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
// plaintext chain does.
func inboundMTLSChain(p inboundPort) *listener.FilterChain {
	alpns, f := inboundTCPALPNs, inboundPortFilter(p)
	if p.protocol.IsHTTP() {
		m := inboundPortHCM(p)
		m.ForwardClientCertDetails = hcm.HttpConnectionManager_APPEND_FORWARD
		m.SetCurrentClientCertDetails = &hcm.HttpConnectionManager_SetCurrentClientCertDetails{
			Subject: wrapperspb.Bool(true), Uri: true, Dns: true}
		alpns, f = inboundHTTPALPNs, hcmFilter(m)
	}
	return &listener.FilterChain{
		Name: fmt.Sprintf("%s%s", OutboundListenerName("0.0.0.0", p.target), mtlsChainSuffix),
		FilterChainMatch: &listener.FilterChainMatch{DestinationPort: wrapperspb.UInt32(p.target),
			TransportProtocol: tlsTransport, ApplicationProtocols: istioMTLSALPNs},
		TransportSocket: &core.TransportSocket{Name: tlsSocketName,
			ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(inboundMTLSContext(alpns))}},
		Filters: []*listener.Filter{f},
	}
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

// inboundTLSInspector reads TLS and its ALPN on the workload's ports only.
func inboundTLSInspector(ports []uint32) *listener.ListenerFilter {
	return &listener.ListenerFilter{
		Name:       tlsInspectorName,
		ConfigType: &listener.ListenerFilter_TypedConfig{TypedConfig: mustAny(&tlsinspector.TlsInspector{})},
		FilterDisabled: &listener.ListenerFilterChainMatchPredicate{
			Rule: &listener.ListenerFilterChainMatchPredicate_NotMatch{NotMatch: portsPredicate(ports)},
		},
	}
}
