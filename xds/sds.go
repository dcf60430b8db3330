package xds

import (
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/proto"

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

// redactSecret returns s without its private key, for debug output.
func redactSecret(s *tlsv3.Secret) *tlsv3.Secret {
	if s.GetTlsCertificate().GetPrivateKey() == nil {
		return s
	}
	out := proto.Clone(s).(*tlsv3.Secret)
	out.GetTlsCertificate().PrivateKey = &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: redacted}}
	return out
}
