// Package ca is meshd's mesh certificate authority, a drop-in for istiod's
// Citadel CA.
//
// The signing material comes from the plug-in `cacerts` Secret (keys
// ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem) when it exists, and
// otherwise from a self-signed root kept in the `istio-ca-secret` Secret,
// created once by whichever replica gets there first and reused by every
// replica and restart. The CA signs workload certificates for SPIFFE
// identities (spiffe://<trust-domain>/ns/<ns>/sa/<sa>) and the DNS serving
// certificate of the secure xDS port.
//
// Callers are authenticated as istiod authenticates them: the bearer token of
// the gRPC "authorization" metadata is checked with a Kubernetes TokenReview
// for the audience istio-ca (Authenticator, TokenReviewer), positive results
// cached briefly. CertificateServer is Istio's CA gRPC service
// (istio.v1.auth.IstioCertificateService/CreateCertificate) on top of both.
//
// RootCertPublisher keeps the root in the istio-ca-root-cert ConfigMap of
// every namespace, as istiod's namespace controller. StaticAuthenticator and
// DirStore are the file provider's counterparts of TokenReview and the
// cacerts Secret.
//
// The CA reaches Kubernetes Secrets and TokenReviews only through the small
// SecretStore and TokenReviewer interfaces; the publisher uses client-go
// informers. This package never imports translate or xds.
package ca
