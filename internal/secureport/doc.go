// Package secureport assembles meshd's secure port, istiod's 15012: TLS with
// a serving certificate that is renewed before it expires (issued by meshd's
// CA, or read from files), the authenticator that checks each caller's
// service-account token (Kubernetes TokenReview, or a static table for the
// file provider), and the gRPC server options that bind the two to the ADS
// and CA services registered on it.
package secureport
