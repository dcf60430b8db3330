package xds

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/meshd/meshd/translate"
)

// SDS: a scope's secrets (translate.Output.Secrets, which translate takes
// from the Secrets of the scope's namespace only) are served like its
// listeners, routes and clusters: marshalled once per push, versioned by
// content, published to the sharedCache for state-of-the-world streams
// and in the scope's snapshot for delta streams. A rotated Secret changes
// the SDS version alone, so only SDS is sent. A stream is sent only what
// its scope's Output holds: whatever secret name it asks for, a proxy
// gets no other scope's.

// buildOutput translates a scope: translate.Build, replaced by tests that
// serve a fixed Output.
var buildOutput = translate.Build

// redacted is what /debug/config_dump shows for a private key, as Envoy's
// own config dump does.
const redacted = "[redacted]"

// redactSecret returns s for debug output, by allow-list: the name, a
// certificate's chain and a validation context (public material) are
// kept; a private key, its password or provider, session ticket keys and
// generic secrets show as redacted.
func redactSecret(s *tlsv3.Secret) *tlsv3.Secret {
	out := &tlsv3.Secret{Name: s.GetName()}
	hidden := &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: redacted}}
	switch t := s.GetType().(type) {
	case *tlsv3.Secret_TlsCertificate:
		c := &tlsv3.TlsCertificate{CertificateChain: t.TlsCertificate.GetCertificateChain()}
		if t.TlsCertificate.GetPrivateKey() != nil || t.TlsCertificate.GetPrivateKeyProvider() != nil {
			c.PrivateKey = hidden
		}
		if t.TlsCertificate.GetPassword() != nil {
			c.Password = hidden
		}
		out.Type = &tlsv3.Secret_TlsCertificate{TlsCertificate: c}
	case *tlsv3.Secret_ValidationContext:
		out.Type = t
	case *tlsv3.Secret_SessionTicketKeys:
		out.Type = &tlsv3.Secret_SessionTicketKeys{SessionTicketKeys: &tlsv3.TlsSessionTicketKeys{Keys: []*core.DataSource{hidden}}}
	case *tlsv3.Secret_GenericSecret:
		out.Type = &tlsv3.Secret_GenericSecret{GenericSecret: &tlsv3.GenericSecret{Secret: hidden}}
	}
	return out
}
