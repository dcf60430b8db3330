package xds

import (
	"context"

	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/meshd/meshd/internal/ca"
)

// Secrets (SDS: gateway certificates and private keys) go only to streams
// whose caller meshd authenticated (the secure port with XDS_AUTH): their
// scope's namespace is then the token's, and a scope's secrets are those of
// its namespace (translate.Index.Secrets). On the plaintext port a node's
// namespace is only its own claim, so an SDS request there is not
// answered, as istiod answers none from a proxy without a verified
// identity: Envoy's listener waits for the secret until its initial fetch
// timeout and then serves without that certificate; the stream and its
// other types go on. Each ignored request is logged and counted in
// meshd_xds_auth_failures_total{reason="secrets_unauthenticated"}.

// secretsRefused reports whether typeURL is SDS and the stream of ctx has
// no authenticated identity, logging and counting the refusal.
func (s *Server) secretsRefused(ctx context.Context, typeURL, node string) bool {
	if typeURL != resourcev3.SecretType {
		return false
	}
	if _, ok := ca.IdentityFrom(ctx); ok {
		return false
	}
	s.m.AuthFailures.WithLabelValues("secrets_unauthenticated").Inc()
	s.log.Warn("not sending secrets to an unauthenticated stream (use the secure port)", "node", node)
	return true
}
