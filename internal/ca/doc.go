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
// Kubernetes is reached only through the small SecretStore interface; this
// package never imports translate or xds.
package ca
