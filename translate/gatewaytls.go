package translate

import (
	"fmt"
	"slices"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
)

// Gateway servers that terminate TLS, as istiod's BuildListenerTLSContext
// (pilot/pkg/networking/core/listener.go) and
// ApplyCredentialSDSToServerCommonTLSContext
// (pilot/pkg/security/model/authentication.go):
//
//   - SIMPLE, MUTUAL, OPTIONAL_MUTUAL with credentialName (or
//     credentialNames): the certificate kubernetes://<name> and, for the
//     mutual modes, the CA kubernetes://<name>-cacert (or
//     caCertCredentialName) over ADS, from the Secrets of the gateway
//     proxy's namespace (Index.Secrets). A secret that cannot be served
//     leaves the server out, reported on the Gateway: no listener ever
//     names a secret its proxy cannot get, which Validate checks;
//   - the same modes with certificate files, and ISTIO_MUTUAL, need Istio's
//     agent (its SDS reads the files, or holds the workload certificate):
//     served to gateways run by pilot-agent (Scope.Agent), left out of the
//     others.
//
// HTTPS servers get an HTTP connection manager taking their route
// configuration https.<port>.<port name>.<gateway>.<namespace>; TLS
// servers a tcp_proxy to their first TCP route. Either filter chain
// matches the server's hosts by SNI ("*" matches any), as istiod's.

// ALPNs of terminating gateway chains (istiod's util.ALPNHttp, and
// ALPNDownstreamWithMxc for a TCP server in ISTIO_MUTUAL).
var (
	gatewayHTTPALPNs     = []string{"h2", "http/1.1"}
	gatewayIstioTCPALPNs = []string{"istio-peer-exchange", "istio", "h2", "http/1.1"}
)

// gatewayTLS is a terminating server's downstream TLS context and the
// secrets it fetches over ADS.
type gatewayTLS struct {
	ctx     *tlsv3.DownstreamTlsContext
	secrets []*tlsv3.Secret
}

// terminatesTLS reports whether a server's TLS settings terminate TLS on
// the gateway.
func terminatesTLS(tls *networking.ServerTLSSettings) bool {
	switch tls.GetMode() {
	case networking.ServerTLSSettings_SIMPLE, networking.ServerTLSSettings_MUTUAL,
		networking.ServerTLSSettings_OPTIONAL_MUTUAL, networking.ServerTLSSettings_ISTIO_MUTUAL:
		return true
	}
	return false
}

// needsAgent says why a terminating server needs Istio's agent's SDS
// ("" when its certificates come over ADS).
func needsAgent(tls *networking.ServerTLSSettings) string {
	switch {
	case tls.GetMode() == networking.ServerTLSSettings_ISTIO_MUTUAL:
		return "mode ISTIO_MUTUAL needs the gateway's workload certificate from Istio's agent (pilot-agent's SDS)"
	case tls.GetCredentialName() == "" && len(tls.GetCredentialNames()) == 0:
		return "certificate files (serverCertificate, privateKey) are read by Istio's agent (pilot-agent's SDS)"
	}
	return ""
}

// gatewayTLSContext builds bs's downstream TLS context for the router's
// namespace. It returns nil after reporting why the server cannot be served
// to this router (a secret it cannot get, no agent).
func (b *builder) gatewayTLSContext(bs *boundServer) *gatewayTLS {
	tls := bs.server.GetTls()
	if why := needsAgent(tls); why != "" && !b.scope.Agent {
		b.leaveOut(bs, ".tls", fmt.Sprintf("%s, which this gateway (no PROXY_CONFIG metadata) does not run; this server is left out", why))
		return nil
	}
	ctx := &tlsv3.DownstreamTlsContext{
		RequireClientCertificate: wrapperspb.Bool(tls.GetMode() == networking.ServerTLSSettings_MUTUAL ||
			tls.GetMode() == networking.ServerTLSSettings_ISTIO_MUTUAL),
		CommonTlsContext: &tlsv3.CommonTlsContext{AlpnProtocols: gatewayHTTPALPNs},
	}
	common := ctx.CommonTlsContext
	var out gatewayTLS
	switch {
	case tls.GetMode() == networking.ServerTLSSettings_ISTIO_MUTUAL:
		if !bs.isHTTPServer() {
			common.AlpnProtocols = gatewayIstioTCPALPNs
		}
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{agentSDS(sdsDefault)}
		common.ValidationContextType = combinedValidation(tls, agentSDS(sdsRootCA))
	case tls.GetCredentialName() != "" || len(tls.GetCredentialNames()) > 0:
		secrets, ok := b.gatewaySecrets(bs, tls)
		if !ok {
			return nil
		}
		out.secrets = secrets
		applyCredentialSDS(common, tls)
	default:
		applyCertificateFiles(common, tls)
	}
	if tls.GetMode() != networking.ServerTLSSettings_ISTIO_MUTUAL {
		applyServerTLSParams(common, tls)
	}
	out.ctx = ctx
	return &out
}

// gatewaySecrets resolves the credential secrets of a server for the
// router's namespace; false (reported) when one cannot be served.
func (b *builder) gatewaySecrets(bs *boundServer, tls *networking.ServerTLSSettings) ([]*tlsv3.Secret, bool) {
	secrets, errs := b.x.Secrets(b.scope.Namespace, credentialSecretNames(tls))
	for _, e := range errs {
		b.leaveOut(bs, ".tls.credentialName", e.Reason+"; this server is left out")
	}
	return secrets, len(errs) == 0
}

// leaveOut reports why a terminating server gets no filter chain on this
// router, and records it for /debug/gatewayz.
func (b *builder) leaveOut(bs *boundServer, field, reason string) {
	b.gwErrs.gateway(bs, field, "%s", reason)
	if b.gwLeftOut == nil {
		b.gwLeftOut = map[*boundServer]string{}
	}
	if _, ok := b.gwLeftOut[bs]; !ok {
		b.gwLeftOut[bs] = reason
	}
}

// credentialNames is the server's credentialNames, else its credentialName.
func credentialNames(tls *networking.ServerTLSSettings) []string {
	if names := tls.GetCredentialNames(); len(names) > 0 {
		return names
	}
	return []string{tls.GetCredentialName()}
}

// caCredential is the SDS name of a mutual server's CA: kubernetes:// of
// caCertCredentialName, else of the first credential with -cacert.
func caCredential(tls *networking.ServerTLSSettings) string {
	if c := tls.GetCaCertCredentialName(); c != "" {
		return SecretName(c)
	}
	return CASecretName(credentialNames(tls)[0])
}

// mutualValidation reports whether the server validates client
// certificates (MUTUAL, OPTIONAL_MUTUAL).
func mutualValidation(tls *networking.ServerTLSSettings) bool {
	return tls.GetMode() == networking.ServerTLSSettings_MUTUAL || tls.GetMode() == networking.ServerTLSSettings_OPTIONAL_MUTUAL
}

// credentialSecretNames are the SDS names a credential server fetches.
func credentialSecretNames(tls *networking.ServerTLSSettings) []string {
	var names []string
	for _, n := range credentialNames(tls) {
		names = append(names, SecretName(n))
	}
	if mutualValidation(tls) {
		names = append(names, caCredential(tls))
	}
	return names
}

// applyCredentialSDS is istiod's ApplyCredentialSDSToServerCommonTLSContext
// without a credential socket: every secret over ADS.
func applyCredentialSDS(common *tlsv3.CommonTlsContext, tls *networking.ServerTLSSettings) {
	for _, n := range credentialNames(tls) {
		common.TlsCertificateSdsSecretConfigs = append(common.TlsCertificateSdsSecretConfigs, adsSDS(SecretName(n)))
	}
	switch {
	case mutualValidation(tls):
		common.ValidationContextType = combinedValidation(tls, adsSDS(caCredential(tls)))
	case len(tls.GetSubjectAltNames()) > 0:
		common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{
			ValidationContext: &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sanMatchers(tls.GetSubjectAltNames())},
		}
	}
}

// applyCertificateFiles names the server's certificate files as the SDS
// resources Istio's agent serves from files (istiod's
// model.GetOrDefault file-cert:<cert>~<key> and file-root:<ca>).
func applyCertificateFiles(common *tlsv3.CommonTlsContext, tls *networking.ServerTLSSettings) {
	common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{
		agentSDS("file-cert:" + tls.GetServerCertificate() + "~" + tls.GetPrivateKey()),
	}
	if mutualValidation(tls) {
		common.ValidationContextType = combinedValidation(tls, agentSDS("file-root:"+tls.GetCaCertificates()))
	}
}

// combinedValidation validates client certificates against the CA of
// source, with the server's SANs, SPKI and hashes, as istiod's.
func combinedValidation(tls *networking.ServerTLSSettings, source *tlsv3.SdsSecretConfig) *tlsv3.CommonTlsContext_CombinedValidationContext {
	def := &tlsv3.CertificateValidationContext{
		MatchTypedSubjectAltNames: sanMatchers(tls.GetSubjectAltNames()),
		VerifyCertificateSpki:     tls.GetVerifyCertificateSpki(),
		VerifyCertificateHash:     tls.GetVerifyCertificateHash(),
	}
	if tls.GetInsecureSkipVerify().GetValue() {
		def.TrustChainVerification = tlsv3.CertificateValidationContext_ACCEPT_UNTRUSTED
	}
	return &tlsv3.CommonTlsContext_CombinedValidationContext{
		CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
			DefaultValidationContext: def, ValidationContextSdsSecretConfig: source,
		},
	}
}

// applyServerTLSParams is istiod's applyServerTLSSettings: protocol
// versions, cipher suites and ECDH curves when the server sets them.
func applyServerTLSParams(common *tlsv3.CommonTlsContext, tls *networking.ServerTLSSettings) {
	p := &tlsv3.TlsParameters{
		TlsMinimumProtocolVersion: tlsv3.TlsParameters_TlsProtocol(tls.GetMinProtocolVersion()),
		TlsMaximumProtocolVersion: tlsv3.TlsParameters_TlsProtocol(tls.GetMaxProtocolVersion()),
		CipherSuites:              tls.GetCipherSuites(),
		EcdhCurves:                tls.GetEcdhCurves(),
	}
	if p.TlsMinimumProtocolVersion != tlsv3.TlsParameters_TLS_AUTO || p.TlsMaximumProtocolVersion != tlsv3.TlsParameters_TLS_AUTO ||
		len(p.CipherSuites) > 0 || len(p.EcdhCurves) > 0 {
		common.TlsParams = p
	}
}

// sniHosts is istiod's GetSNIHostsForServer: the server's hosts without
// their namespace, sorted, each once; nil when one is "*" (any SNI).
func sniHosts(s *networking.Server) []string {
	var out []string
	for _, h := range s.GetHosts() {
		if _, name, ok := strings.Cut(h, "/"); ok {
			h = name
		}
		if h == "*" {
			return nil
		}
		out = append(out, h)
	}
	return slices.Compact(slices.Sorted(slices.Values(out)))
}

// gatewayTerminatingChain is the filter chain of a server that terminates
// TLS: an HTTPS server's HTTP connection manager on its own route
// configuration, or a TLS server's tcp_proxy; nil when the server cannot be
// served to this router (reported).
func (b *builder) gatewayTerminatingChain(bs *boundServer, listenerName string, m *mergedGateway) *gatewayChain {
	var c *gatewayChain
	if bs.isHTTPServer() {
		c = &gatewayChain{
			fc:    &listener.FilterChain{Filters: []*listener.Filter{gatewayHTTPFilter(listenerName, bs.routeName)}},
			desc:  fmt.Sprintf("server %d of Gateway %s", bs.index, bs.gw.name),
			route: b.gatewayRouteConfig(bs.routeName, m.byRoute[bs.routeName]),
		}
	} else if c = b.gatewayTCPChain(bs); c == nil {
		return nil
	}
	tls := b.gatewayTLSContext(bs)
	if tls == nil {
		return nil
	}
	c.fc.TransportSocket = &core.TransportSocket{Name: tlsSocketName,
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(tls.ctx)}}
	if hosts := sniHosts(bs.server); len(hosts) > 0 {
		c.fc.FilterChainMatch = &listener.FilterChainMatch{ServerNames: hosts}
	}
	c.secrets = tls.secrets
	c.duplicate = func(other string) {
		b.gwErrs.gateway(bs, ".hosts", "port %d: this server's filter chain matches as %s does; this server is left out", bs.port, other)
	}
	return c
}
