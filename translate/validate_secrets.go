package translate

import (
	"fmt"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
)

// checkClusterSecrets turns on, in Validate, the SDS check of clusters: a
// cluster's UpstreamTlsContext that fetches a secret over ADS must find it
// in Output.Secrets. It is off while DestinationRule credentialName
// (upstreamtls.go) names kubernetes:// secrets that Build does not yet put
// in the Output: with it on, every scope seeing such a DestinationRule
// would be refused new config (golden case dr-tls). CheckSecretReferences
// checks clusters regardless.
const checkClusterSecrets = false

// CheckSecretReferences verifies that every SDS secret a listener's
// DownstreamTlsContext or a cluster's UpstreamTlsContext fetches over ADS
// is in out.Secrets. Secrets from another SDS server, such as the
// pilot-agent's (the sds-grpc cluster: ISTIO_MUTUAL's "default" and
// "ROOTCA"), are not meshd's to serve and are not checked.
func CheckSecretReferences(out *Output) []error {
	secrets := newNameSet(out.Secrets, (*tlsv3.Secret).GetName)
	var errs []error
	for _, l := range out.Listeners {
		for _, r := range listenerRefs(l) {
			if r.secret != "" {
				errs = append(errs, r.missing(l.Name, nil, nil, secrets.has)...)
			}
		}
	}
	return append(errs, clusterSecretErrors(out.Clusters, secrets.has)...)
}

// clusterSecretErrors reports the ADS-fetched secrets of clusters that has
// does not know.
func clusterSecretErrors(cs []*cluster.Cluster, has func(string) bool) []error {
	var errs []error
	for _, c := range cs {
		for _, name := range clusterSecretRefs(c) {
			if !has(name) {
				errs = append(errs, fmt.Errorf("cluster %q references missing secret %q (SDS over ADS)", c.Name, name))
			}
		}
	}
	return errs
}

// clusterSecretRefs lists the secrets a cluster's transport sockets (its
// own and its transport socket matches') fetch over ADS.
func clusterSecretRefs(c *cluster.Cluster) []string {
	sockets := []*core.TransportSocket{c.GetTransportSocket()}
	for _, m := range c.GetTransportSocketMatches() {
		sockets = append(sockets, m.GetTransportSocket())
	}
	var out []string
	for _, ts := range sockets {
		a := ts.GetTypedConfig()
		if a == nil {
			continue
		}
		ctx := &tlsv3.UpstreamTlsContext{}
		if a.MessageIs(ctx) && a.UnmarshalTo(ctx) == nil {
			out = append(out, commonSecretRefs(ctx.GetCommonTlsContext())...)
		}
	}
	return out
}

// downstreamSecretRefs lists the secrets a listener's TLS context fetches
// over ADS: certificates, validation context, session ticket keys.
func downstreamSecretRefs(ctx *tlsv3.DownstreamTlsContext) []string {
	out := commonSecretRefs(ctx.GetCommonTlsContext())
	if c := ctx.GetSessionTicketKeysSdsSecretConfig(); overADS(c) {
		out = append(out, c.GetName())
	}
	return out
}

// commonSecretRefs lists the secrets of a TLS context fetched over ADS.
func commonSecretRefs(ctx *tlsv3.CommonTlsContext) []string {
	configs := append([]*tlsv3.SdsSecretConfig(nil), ctx.GetTlsCertificateSdsSecretConfigs()...)
	configs = append(configs, ctx.GetValidationContextSdsSecretConfig(),
		ctx.GetCombinedValidationContext().GetValidationContextSdsSecretConfig())
	var out []string
	for _, c := range configs {
		if overADS(c) {
			out = append(out, c.GetName())
		}
	}
	return out
}

// overADS reports whether an SDS secret is fetched over the ADS stream,
// that is from meshd.
func overADS(c *tlsv3.SdsSecretConfig) bool { return c.GetSdsConfig().GetAds() != nil }
