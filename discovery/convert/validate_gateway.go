package convert

import (
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// validateGateway checks that there is at least one server and that every
// server has a valid port, hosts, and TLS settings when it terminates or
// passes through TLS.
func validateGateway(gw *networking.Gateway) *fieldError {
	if len(gw.GetServers()) == 0 {
		return errf("spec.servers", "at least one server is required")
	}
	for i, s := range gw.GetServers() {
		if fe := validateServer(s, at("spec.servers", i)); fe != nil {
			return fe
		}
	}
	return nil
}

func validateServer(s *networking.Server, p string) *fieldError {
	port := s.GetPort()
	if port == nil {
		return errf(p+".port", "port is required")
	}
	if n := port.GetNumber(); n < 1 || n > 65535 {
		return errf(p+".port.number", "port %d is out of range 1-65535", n)
	}
	proto := model.ParseProtocol(port.GetProtocol())
	if proto == model.ProtocolUnsupported {
		return errf(p+".port.protocol", "protocol %q is not supported (want HTTP, HTTPS, GRPC, HTTP2, TLS, TCP, ...)", port.GetProtocol())
	}
	if len(s.GetHosts()) == 0 {
		return errf(p+".hosts", "at least one host is required")
	}
	for j, h := range s.GetHosts() {
		if h == "" {
			return errf(at(p+".hosts", j), "host must not be empty")
		}
	}
	if (proto == model.ProtocolHTTPS || proto == model.ProtocolTLS) && s.GetTls() == nil {
		return errf(p+".tls", "a %s server requires tls settings", port.GetProtocol())
	}
	return validateServerTLS(s.GetTls(), p+".tls")
}

// validateServerTLS is istiod's validateTLSOptions for the certificates a
// terminating server needs: a credentialName (or credentialNames), else
// serverCertificate and privateKey, and for MUTUAL without a credential
// caCertificates.
func validateServerTLS(tls *networking.ServerTLSSettings, p string) *fieldError {
	switch tls.GetMode() {
	case networking.ServerTLSSettings_SIMPLE, networking.ServerTLSSettings_MUTUAL, networking.ServerTLSSettings_OPTIONAL_MUTUAL:
	default:
		return nil
	}
	if tls.GetCredentialName() != "" || len(tls.GetCredentialNames()) > 0 {
		return nil
	}
	mode := tls.GetMode().String()
	switch {
	case tls.GetServerCertificate() == "":
		return errf(p+".serverCertificate", "%s TLS requires credentialName, or serverCertificate and privateKey", mode)
	case tls.GetPrivateKey() == "":
		return errf(p+".privateKey", "%s TLS with serverCertificate requires privateKey", mode)
	case tls.GetMode() == networking.ServerTLSSettings_MUTUAL && tls.GetCaCertificates() == "":
		return errf(p+".caCertificates", "MUTUAL TLS with certificate files requires caCertificates")
	}
	return nil
}
