package translate

import (
	"fmt"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	networking "istio.io/api/networking/v1"
)

// SDS names istiod's sidecars use: the workload certificate and the mesh
// root, served by the pilot-agent over the bootstrap's "sds-grpc" cluster.
const (
	sdsDefault    = "default"
	sdsRootCA     = "ROOTCA"
	sdsCluster    = "sds-grpc"
	tlsSocketName = "envoy.transport_sockets.tls"
	// credentialPrefix names Kubernetes secrets fetched over SDS, as istiod.
	credentialPrefix = "kubernetes://"
)

// applyUpstreamTLS sets the cluster's TLS origination from a
// DestinationRule's tls settings (nil or DISABLE: plain text).
//
// ISTIO_MUTUAL uses the workload certificate "default" and "ROOTCA" from the
// agent's SDS, SNI outbound_.<port>_.<subset>_.<host>, and the destination's
// SPIFFE identities. SIMPLE and MUTUAL take certificates from files, or from
// the Kubernetes secret credentialName over ADS (kubernetes://<name>, CA in
// kubernetes://<name>-cacert), as istiod; meshd does not serve secrets
// itself, so such clusters need an SDS server that does.
func applyUpstreamTLS(c *cluster.Cluster, tls *networking.ClientTLSSettings, t policyTarget) {
	var ctx *tlsv3.UpstreamTlsContext
	switch tls.GetMode() {
	case networking.ClientTLSSettings_ISTIO_MUTUAL:
		ctx = istioMutualContext(tls, t)
	case networking.ClientTLSSettings_SIMPLE, networking.ClientTLSSettings_MUTUAL:
		ctx = userTLSContext(tls, t)
	default:
		return
	}
	c.TransportSocket = &core.TransportSocket{
		Name:       tlsSocketName,
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)},
	}
}

func istioMutualContext(tls *networking.ClientTLSSettings, t policyTarget) *tlsv3.UpstreamTlsContext {
	sans := tls.GetSubjectAltNames()
	if len(sans) == 0 {
		sans = t.sans
	}
	sni := tls.GetSni()
	if sni == "" {
		sni = fmt.Sprintf("outbound_.%d_.%s_.%s", t.port.Port, t.subset, t.host)
	}
	return &tlsv3.UpstreamTlsContext{
		Sni: sni,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols:                  []string{"istio-peer-exchange", "istio"},
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{agentSDS(sdsDefault)},
			ValidationContextType: &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext:         &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sanMatchers(sans)},
					ValidationContextSdsSecretConfig: agentSDS(sdsRootCA),
				},
			},
		},
	}
}

func userTLSContext(tls *networking.ClientTLSSettings, t policyTarget) *tlsv3.UpstreamTlsContext {
	ctx := &tlsv3.UpstreamTlsContext{Sni: tls.GetSni(), CommonTlsContext: &tlsv3.CommonTlsContext{}}
	if ctx.Sni == "" && !strings.Contains(t.host, "*") {
		ctx.Sni = t.host // istiod's auto SNI
	}
	common := ctx.CommonTlsContext
	mutual := tls.GetMode() == networking.ClientTLSSettings_MUTUAL
	skipVerify := tls.GetInsecureSkipVerify().GetValue()
	validation := &tlsv3.CertificateValidationContext{MatchTypedSubjectAltNames: sanMatchers(tls.GetSubjectAltNames())}
	switch {
	case tls.GetCredentialName() != "":
		name := credentialPrefix + tls.GetCredentialName()
		if mutual {
			common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{adsSDS(name)}
		}
		if !skipVerify {
			common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{
				CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
					DefaultValidationContext:         validation,
					ValidationContextSdsSecretConfig: adsSDS(name + "-cacert"),
				},
			}
		}
	default:
		if mutual && tls.GetClientCertificate() != "" {
			common.TlsCertificates = []*tlsv3.TlsCertificate{{
				CertificateChain: fileSource(tls.GetClientCertificate()),
				PrivateKey:       fileSource(tls.GetPrivateKey()),
			}}
		}
		if ca := tls.GetCaCertificates(); ca != "" && !skipVerify {
			validation.TrustedCa = fileSource(ca)
			common.ValidationContextType = &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: validation}
		}
	}
	return ctx
}

// sanMatchers matches SPIFFE IDs as URI SANs and anything else as DNS SANs.
func sanMatchers(sans []string) []*tlsv3.SubjectAltNameMatcher {
	var out []*tlsv3.SubjectAltNameMatcher
	for _, s := range sans {
		t := tlsv3.SubjectAltNameMatcher_DNS
		if strings.HasPrefix(s, "spiffe://") {
			t = tlsv3.SubjectAltNameMatcher_URI
		}
		out = append(out, &tlsv3.SubjectAltNameMatcher{
			SanType: t,
			Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: s}},
		})
	}
	return out
}

// agentSDS is a secret from the pilot-agent's SDS server.
func agentSDS(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: &core.ConfigSource{
		ResourceApiVersion: core.ApiVersion_V3,
		ConfigSourceSpecifier: &core.ConfigSource_ApiConfigSource{ApiConfigSource: &core.ApiConfigSource{
			ApiType:                   core.ApiConfigSource_GRPC,
			SetNodeOnFirstMessageOnly: true,
			TransportApiVersion:       core.ApiVersion_V3,
			GrpcServices: []*core.GrpcService{{TargetSpecifier: &core.GrpcService_EnvoyGrpc_{
				EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: sdsCluster},
			}}},
		}},
	}}
}

// adsSDS is a secret fetched over the ADS stream (credentialName).
func adsSDS(name string) *tlsv3.SdsSecretConfig {
	return &tlsv3.SdsSecretConfig{Name: name, SdsConfig: adsConfigSource()}
}

func fileSource(path string) *core.DataSource {
	return &core.DataSource{Specifier: &core.DataSource_Filename{Filename: path}}
}
