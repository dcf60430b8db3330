package translate

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tlsListener is a listener terminating TLS with the given certificate
// and validation context secrets.
func tlsListener(name string, cert, ca *tlsv3.SdsSecretConfig) *listener.Listener {
	l := outboundListener(name, "0.0.0.0", 443, tcpFilter("p", "outbound|5432||db"))
	common := &tlsv3.CommonTlsContext{TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{cert}}
	if ca != nil {
		common.ValidationContextType = &tlsv3.CommonTlsContext_CombinedValidationContext{
			CombinedValidationContext: &tlsv3.CommonTlsContext_CombinedCertificateValidationContext{
				DefaultValidationContext: &tlsv3.CertificateValidationContext{}, ValidationContextSdsSecretConfig: ca}}
	}
	l.FilterChains[0].TransportSocket = &core.TransportSocket{Name: tlsSocketName,
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.DownstreamTlsContext{CommonTlsContext: common})}}
	return l
}

// tlsCluster is an EDS cluster originating TLS with the given secrets.
func tlsCluster(name string, cert, ca *tlsv3.SdsSecretConfig) *cluster.Cluster {
	c := edsCluster(name)
	common := &tlsv3.CommonTlsContext{ValidationContextType: &tlsv3.CommonTlsContext_ValidationContextSdsSecretConfig{ValidationContextSdsSecretConfig: ca}}
	if cert != nil {
		common.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{cert}
	}
	c.TransportSocket = &core.TransportSocket{Name: tlsSocketName,
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{CommonTlsContext: common})}}
	return c
}

func inlineSecret(name string) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
		TrustedCa: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: []byte("pem")}}}}}
}

func dbOutput() *Output {
	return &Output{
		Clusters:  []*cluster.Cluster{edsCluster("outbound|5432||db")},
		Endpoints: []*endpoint.ClusterLoadAssignment{{ClusterName: "outbound|5432||db"}},
	}
}

// TestValidateSecretReferences: a listener may fetch over ADS only the
// secrets of its Output; what it fetches from the agent's SDS (sds-grpc)
// is not meshd's to serve.
func TestValidateSecretReferences(t *testing.T) {
	out := dbOutput()
	out.Listeners = []*listener.Listener{tlsListener("0.0.0.0_443", adsSDS("kubernetes://gw"), adsSDS("kubernetes://gw-cacert"))}
	err := Validate(out)
	assert.ErrorContains(t, err, `listener "0.0.0.0_443" references missing secret "kubernetes://gw" (SDS over ADS)`)
	assert.ErrorContains(t, err, `listener "0.0.0.0_443" references missing secret "kubernetes://gw-cacert" (SDS over ADS)`)

	out.Secrets = []*tlsv3.Secret{inlineSecret("kubernetes://gw")}
	err = Validate(out)
	assert.NotContains(t, err.Error(), `"kubernetes://gw" (SDS`)
	assert.ErrorContains(t, err, `missing secret "kubernetes://gw-cacert"`)

	out.Secrets = append(out.Secrets, inlineSecret("kubernetes://gw-cacert"))
	require.NoError(t, Validate(out))
	assert.Empty(t, CheckSecretReferences(out))

	agent := dbOutput()
	agent.Listeners = []*listener.Listener{tlsListener("0.0.0.0_443", agentSDS(sdsDefault), agentSDS(sdsRootCA))}
	require.NoError(t, Validate(agent), "the agent's secrets are not meshd's")

	// Secrets pass ValidateAll, once each.
	bad := &Output{Secrets: []*tlsv3.Secret{{Name: "kubernetes://bad", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &core.DataSource{Specifier: &core.DataSource_Filename{}}}}}}}
	assert.ErrorContains(t, Validate(bad), `secret "kubernetes://bad"`)
	twice := &Output{Secrets: []*tlsv3.Secret{inlineSecret("kubernetes://a"), inlineSecret("kubernetes://a")}}
	assert.ErrorContains(t, Validate(twice), `secret "kubernetes://a": in the output twice`)
}

// TestClusterSecretReferences: a cluster's TLS origination over ADS
// (credentialName) needs its secrets in the Output; ISTIO_MUTUAL's
// "default" and "ROOTCA" from the agent do not.
func TestClusterSecretReferences(t *testing.T) {
	out := dbOutput()
	out.Clusters = append(out.Clusters,
		tlsCluster("outbound|443||partner", nil, adsSDS("kubernetes://partner-cacert")),
		tlsCluster("outbound|8443||clearing", adsSDS("kubernetes://clearing"), adsSDS("kubernetes://clearing-cacert")),
		tlsCluster("outbound|8080||mesh", agentSDS(sdsDefault), agentSDS(sdsRootCA)))
	errs := CheckSecretReferences(out)
	require.Len(t, errs, 3)
	assert.EqualError(t, errs[0], `cluster "outbound|443||partner" references missing secret "kubernetes://partner-cacert" (SDS over ADS)`)
	assert.EqualError(t, errs[1], `cluster "outbound|8443||clearing" references missing secret "kubernetes://clearing" (SDS over ADS)`)

	out.Secrets = []*tlsv3.Secret{inlineSecret("kubernetes://clearing"), inlineSecret("kubernetes://clearing-cacert"),
		inlineSecret("kubernetes://partner-cacert")}
	assert.Empty(t, CheckSecretReferences(out))

	// Transport socket matches count too.
	m := edsCluster("outbound|80||auto")
	m.TransportSocketMatches = []*cluster.Cluster_TransportSocketMatch{{Name: "tls",
		TransportSocket: tlsCluster("x", nil, adsSDS("kubernetes://auto-cacert")).TransportSocket}}
	assert.Equal(t, []string{"kubernetes://auto-cacert"}, clusterSecretRefs(m))

	if !checkClusterSecrets {
		// See checkClusterSecrets: DestinationRule credentialName clusters
		// are served as before until Build fills their secrets in.
		out.Secrets = nil
		for _, c := range out.Clusters[1:] {
			out.Endpoints = append(out.Endpoints, &endpoint.ClusterLoadAssignment{ClusterName: c.Name})
		}
		require.NoError(t, Validate(out))
	}
}

// TestValidateSplitSecrets: a scope's own listeners may fetch their own
// secrets or the view's.
func TestValidateSplitSecrets(t *testing.T) {
	x := &Index{clas: map[string]*endpoint.ClusterLoadAssignment{"outbound|5432||db": {ClusterName: "outbound|5432||db"}}}
	view := dbOutput()
	view.Endpoints = nil
	own := func(secrets ...*tlsv3.Secret) *Output {
		return &Output{Listeners: []*listener.Listener{tlsListener("0.0.0.0_443", adsSDS("kubernetes://gw"), nil)}, Secrets: secrets}
	}
	require.NoError(t, ValidateIn(x, merged(view, own(inlineSecret("kubernetes://gw")))))
	assert.ErrorContains(t, ValidateIn(x, merged(view, own())), `listener "0.0.0.0_443" references missing secret "kubernetes://gw"`)
	withSecret := dbOutput()
	withSecret.Endpoints, withSecret.Secrets = nil, []*tlsv3.Secret{inlineSecret("kubernetes://gw")}
	require.NoError(t, ValidateIn(x, merged(withSecret, own())), "the view's secret")
}
