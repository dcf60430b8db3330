package bootstrap

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
)

// tlsTransportSocketName is Envoy's TLS transport socket.
const tlsTransportSocketName = "envoy.transport_sockets.tls"

// The default ports of meshd's two ADS listeners, for xdsPortWarning.
const (
	plaintextXDSPort = "15010"
	secureXDSPort    = "15012"
)

// tlsFlags are the flags that only mean something with --tls.
var tlsFlags = []string{"root-cert", "token-file", "tls-server-name"}

// deriveTLS completes the --tls settings: the secure port as the default
// xDS address, the root certificate checked and made absolute, the token
// read. Without --tls, giving one of tlsFlags is an error (it would be
// silently plaintext), their environment variables are ignored, and the
// fields are cleared.
func (o *Options) deriveTLS(set given) error {
	if !o.TLS {
		for _, f := range tlsFlags {
			if set.explicit(f) {
				return usagef("--%s is only used with --tls: add --tls to connect to meshd's secure port", f)
			}
		}
		o.RootCert, o.TokenFile, o.Token, o.TLSServerName = "", "", "", ""
		return nil
	}
	if !set.has("xds-address") {
		o.XDSAddress = DefaultSecureXDSAddress
	}
	for _, f := range []string{"root-cert", "token-file"} {
		if !set.has(f) {
			return usagef("--tls needs --%s (see meshd bootstrap --help)", f)
		}
	}
	abs, err := readRootCert(o.RootCert)
	if err != nil {
		return set.invalid("root-cert", o.RootCert, err)
	}
	o.RootCert = abs
	if o.Token, err = readToken(o.TokenFile); err != nil {
		return set.invalid("token-file", o.TokenFile, err)
	}
	return nil
}

// readRootCert checks that file holds at least one PEM certificate, every
// one of them parseable, and returns its absolute path: Envoy reads the
// file itself, from its own working directory.
func readRootCert(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	n := 0
	for rest := data; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return "", fmt.Errorf("certificate %d: %w", n+1, err)
		}
		n++
	}
	if n == 0 {
		return "", errors.New("the file holds no PEM certificate (-----BEGIN CERTIFICATE-----); " +
			"want the mesh root, root-cert.pem of the istio-ca-root-cert ConfigMap")
	}
	return filepath.Abs(file)
}

// readToken returns the token in file without surrounding white space. It
// must be one HTTP header value's worth: printable ASCII, no white space.
func readToken(file string) (string, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", errors.New("the file is empty; want a service-account token " +
			"(kubectl create token SA -n NS --audience istio-ca)")
	}
	for _, c := range []byte(tok) {
		if c <= ' ' || c > '~' {
			return "", errors.New("white space or a character other than printable ASCII inside the token; " +
				"want one service-account token (a JWT)")
		}
	}
	return tok, nil
}

// xdsInitialMetadata is what every xDS stream carries: with TLS, the token
// as a bearer credential, which meshd authenticates (istiod's XDS_AUTH).
func (o *Options) xdsInitialMetadata() []*core.HeaderValue {
	if !o.TLS {
		return nil
	}
	return []*core.HeaderValue{{Key: "authorization", Value: "Bearer " + o.Token}}
}

// xdsTransportSocket is the xds-grpc cluster's TLS, nil without --tls:
// ALPN h2, SNI TLSServerName, and the serving certificate verified against
// RootCert with TLSServerName as an exact DNS SAN.
func (o *Options) xdsTransportSocket() (*core.TransportSocket, error) {
	if !o.TLS {
		return nil, nil
	}
	san := &tlsv3.SubjectAltNameMatcher{
		SanType: tlsv3.SubjectAltNameMatcher_DNS,
		Matcher: &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: o.TLSServerName}},
	}
	validation := &tlsv3.CertificateValidationContext{
		TrustedCa:                 &core.DataSource{Specifier: &core.DataSource_Filename{Filename: o.RootCert}},
		MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{san},
	}
	cfg, err := pack(&tlsv3.UpstreamTlsContext{
		Sni: o.TLSServerName,
		CommonTlsContext: &tlsv3.CommonTlsContext{
			AlpnProtocols:         []string{"h2"},
			ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: validation},
		},
	})
	if err != nil {
		return nil, err
	}
	return &core.TransportSocket{
		Name:       tlsTransportSocketName,
		ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: cfg},
	}, nil
}

// xdsPortWarning warns when the xDS port is meshd's default for the other
// transport, or "": TLS to the plaintext port, or plaintext to the secure
// one, fails every connection attempt.
func (o *Options) xdsPortWarning() string {
	_, port, err := net.SplitHostPort(o.XDSAddress)
	switch {
	case err != nil:
		return ""
	case o.TLS && port == plaintextXDSPort:
		return fmt.Sprintf("--xds-address %s with --tls: port %s is meshd's default plaintext port, "+
			"where the TLS handshake fails; its secure port is %s by default", o.XDSAddress, port, secureXDSPort)
	case !o.TLS && port == secureXDSPort:
		return fmt.Sprintf("--xds-address %s without --tls: port %s is meshd's default secure port, "+
			"which refuses plaintext and unauthenticated streams; add --tls (with --root-cert and --token-file)",
			o.XDSAddress, port)
	}
	return ""
}
