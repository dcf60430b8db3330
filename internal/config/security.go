package config

import (
	"fmt"
	"strings"
	"time"
)

// Security are the settings of meshd's secure port (istiod's 15012): xDS
// over TLS with service-account authentication, and Istio's CA service.
type Security struct {
	// SecureXDSAddress is the TLS listen address serving ADS and Istio's CA
	// service ("off" disables it; istiod: --secureGRPCAddr :15012).
	SecureXDSAddress string
	// XDSAuth (XDS_AUTH) authenticates the streams of the secure port by
	// their bearer token and binds each to its token's namespace.
	XDSAuth bool
	// DebugAuthAllowedNamespaces (DEBUG_ENDPOINT_AUTH_ALLOWED_NAMESPACES)
	// are more namespaces, comma-separated, whose identities may read every
	// debug endpoint over the secure port's xDS (istio.io/debug), as the
	// istio namespace's and the mesh root namespace's may; other namespaces
	// read only the config_dump of their own proxies.
	DebugAuthAllowedNamespaces string
	// CertProvider (PILOT_CERT_PROVIDER) says where the secure port's
	// serving certificate comes from: "istiod" (signed by meshd's CA) or
	// "custom" (tls.crt and tls.key in CustomCertDir).
	CertProvider string
	// CustomHost (ISTIOD_CUSTOM_HOST) are more DNS names, comma-separated,
	// for the CA-issued serving certificate, besides istiod's own.
	CustomHost string
	// CustomCertDir holds the serving certificate when CertProvider is custom.
	CustomCertDir string
	// RootCADir (ROOT_CA_DIR) holds a plug-in CA as files (ca-cert.pem,
	// ca-key.pem, root-cert.pem, cert-chain.pem), as the cacerts Secret
	// mounted into istiod; used when it holds ca-key.pem.
	RootCADir string
	// TrustDomain names the mesh in workload identities
	// (spiffe://<trust domain>/ns/<ns>/sa/<sa>).
	TrustDomain string
	// DefaultWorkloadCertTTL (DEFAULT_WORKLOAD_CERT_TTL) applies when a
	// certificate request asks for no TTL.
	DefaultWorkloadCertTTL time.Duration
	// MaxWorkloadCertTTL (MAX_WORKLOAD_CERT_TTL) is the longest TTL a request
	// may ask for; a longer one is refused.
	MaxWorkloadCertTTL time.Duration
	// TokenAudiences (TOKEN_AUDIENCES) are the audiences a token must carry.
	TokenAudiences string
	// CATrustedNodeAccounts (CA_TRUSTED_NODE_ACCOUNTS) would let node agents
	// ask for other workloads' certificates; meshd does not support it and
	// refuses to start when it is set.
	CATrustedNodeAccounts string
	// StaticTokens is a file of "<token> <namespace> <service account>"
	// lines that authenticate callers without a TokenReview, for the file
	// provider and tests.
	StaticTokens string
}

// Off is the address value that disables a listener.
const Off = "off"

// Cert providers of the secure port's serving certificate.
const (
	CertProviderIstiod = "istiod"
	CertProviderCustom = "custom"
)

// defaultSecurity returns the Security defaults (istiod's).
func defaultSecurity() Security {
	return Security{
		SecureXDSAddress:       ":15012",
		XDSAuth:                true,
		CertProvider:           CertProviderIstiod,
		CustomCertDir:          "./var/run/secrets/istiod/tls",
		RootCADir:              "./etc/cacerts",
		TrustDomain:            "cluster.local",
		DefaultWorkloadCertTTL: 24 * time.Hour,
		MaxWorkloadCertTTL:     90 * 24 * time.Hour,
		TokenAudiences:         "istio-ca",
	}
}

// securityOptions are the secure port's settings, bound to s.
func securityOptions(s *Security) []option {
	return []option{
		{flag: "secure-xds-address", arg: "ADDR", value: stringValue{p: &s.SecureXDSAddress},
			usage: "TLS listen address serving ADS and Istio's CA service (IstioCertificateService) on one port, " +
				"for pilot-agent and `meshd bootstrap --tls`; off disables it", istiod: "--secureGRPCAddr :15012"},
		{flag: "xds-auth", env: "XDS_AUTH", value: boolValue{p: &s.XDSAuth},
			usage: "authenticate secure-port streams by their service-account token (Kubernetes TokenReview, or " +
				"--static-tokens) and serve each proxy only its token's namespace; false: the secure port " +
				"serves anyone (TLS only)", istiod: "XDS_AUTH, same default"},
		{flag: "debug-auth-allowed-namespaces", arg: "LIST", env: "DEBUG_ENDPOINT_AUTH_ALLOWED_NAMESPACES",
			value: stringValue{p: &s.DebugAuthAllowedNamespaces},
			usage: "comma-separated namespaces whose identities may read every debug endpoint over the secure port's " +
				"xDS (istio.io/debug), besides the istio namespace and the mesh root namespace; other namespaces read only " +
				"config_dump of their own proxies", istiod: "DEBUG_ENDPOINT_AUTH_ALLOWED_NAMESPACES, same default"},
		{flag: "cert-provider", arg: "NAME", env: "PILOT_CERT_PROVIDER",
			value: stringValue{p: &s.CertProvider, choices: []string{CertProviderIstiod, CertProviderCustom}},
			usage: "serving certificate of the secure port: istiod (issued and renewed by meshd's CA) or custom " +
				"(tls.crt and tls.key in --custom-cert-dir)", istiod: "PILOT_CERT_PROVIDER (also kubernetes; not supported)"},
		{flag: "custom-host", arg: "LIST", env: "ISTIOD_CUSTOM_HOST", value: stringValue{p: &s.CustomHost},
			usage: "more DNS names (comma-separated) for the serving certificate meshd's CA issues, besides " +
				"istiod.NS.svc, istiod-remote.NS.svc and istio-pilot.NS.svc", istiod: "ISTIOD_CUSTOM_HOST, same default"},
		{flag: "custom-cert-dir", arg: "DIR", value: stringValue{p: &s.CustomCertDir},
			usage: "directory of the custom serving certificate", istiod: "./var/run/secrets/istiod/tls"},
		{flag: "root-ca-dir", arg: "DIR", env: "ROOT_CA_DIR", value: stringValue{p: &s.RootCADir},
			usage: "plug-in CA files (ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem), used when ca-key.pem " +
				"is there; else the cacerts Secret, else the self-signed root in istio-ca-secret", istiod: "ROOT_CA_DIR, same default"},
		{flag: "trust-domain", arg: "DOMAIN", value: stringValue{p: &s.TrustDomain},
			usage: "trust domain of workload identities (spiffe://DOMAIN/ns/NS/sa/SA)", istiod: "MeshConfig trustDomain"},
		{flag: "default-workload-cert-ttl", arg: "DURATION", env: "DEFAULT_WORKLOAD_CERT_TTL", value: durationValue{p: &s.DefaultWorkloadCertTTL},
			usage: "lifetime of a workload certificate whose request asks for none", istiod: "DEFAULT_WORKLOAD_CERT_TTL, same default"},
		{flag: "max-workload-cert-ttl", arg: "DURATION", env: "MAX_WORKLOAD_CERT_TTL", value: durationValue{p: &s.MaxWorkloadCertTTL},
			usage: "longest workload certificate lifetime a request may ask for; longer requests are refused", istiod: "MAX_WORKLOAD_CERT_TTL, same default"},
		{flag: "token-audiences", arg: "LIST", env: "TOKEN_AUDIENCES", value: stringValue{p: &s.TokenAudiences},
			usage: "comma-separated audiences a service-account token must carry one of", istiod: "TOKEN_AUDIENCES, same default"},
		{flag: "ca-trusted-node-accounts", arg: "LIST", env: "CA_TRUSTED_NODE_ACCOUNTS", value: stringValue{p: &s.CATrustedNodeAccounts},
			usage:  "node agents allowed to ask for other workloads' certificates: not supported, meshd refuses to start when set",
			istiod: "CA_TRUSTED_NODE_ACCOUNTS (ztunnel)"},
		{flag: "static-tokens", arg: "FILE", value: stringValue{p: &s.StaticTokens},
			usage: `authenticate callers from a file of "TOKEN NAMESPACE SERVICEACCOUNT" lines instead of TokenReview ` +
				"(the file provider has no API server to ask; for tests and demos)", istiod: "none"},
	}
}

// Audiences returns TokenAudiences as a list.
func (s Security) Audiences() []string { return splitList(s.TokenAudiences) }

// DebugAllowedNamespaces returns DebugAuthAllowedNamespaces as a list.
func (s Security) DebugAllowedNamespaces() []string { return splitList(s.DebugAuthAllowedNamespaces) }

// CustomHosts returns CustomHost as a list.
func (s Security) CustomHosts() []string { return splitList(s.CustomHost) }

// SecureEnabled reports whether the secure port is served.
func (s Security) SecureEnabled() bool { return s.SecureXDSAddress != "" && s.SecureXDSAddress != Off }

// check refuses combinations that cannot work.
func (s Security) check() error {
	if s.CATrustedNodeAccounts != "" {
		return fmt.Errorf("CA_TRUSTED_NODE_ACCOUNTS=%q: node authorization (an agent asking for other workloads' "+
			"certificates, as ztunnel does) is not supported by meshd; unset it", s.CATrustedNodeAccounts)
	}
	if s.DefaultWorkloadCertTTL > s.MaxWorkloadCertTTL {
		return fmt.Errorf("--default-workload-cert-ttl %s is longer than --max-workload-cert-ttl %s",
			s.DefaultWorkloadCertTTL, s.MaxWorkloadCertTTL)
	}
	if len(s.Audiences()) == 0 {
		return fmt.Errorf("--token-audiences %q: want at least one audience", s.TokenAudiences)
	}
	return nil
}

// splitList splits a comma-separated list, dropping empty items.
func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
