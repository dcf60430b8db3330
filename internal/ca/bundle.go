package ca

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"time"
)

// Secret names and keys, as istiod spells them.
const (
	// PluggedSecretName is the plug-in CA Secret (istiod's CACertsSecret).
	PluggedSecretName = "cacerts"
	// SelfSignedSecretName holds istiod's self-signed root (istiod's CASecret).
	SelfSignedSecretName = "istio-ca-secret"
	// RootConfigMapName is the ConfigMap publishing the root in every namespace.
	RootConfigMapName = "istio-ca-root-cert"
	// RootConfigMapKey is the key of the root PEM in RootConfigMapName.
	RootConfigMapKey = "root-cert.pem"

	// CACertKey is the signing (CA) certificate.
	CACertKey = "ca-cert.pem"
	// CAKeyKey is the signing certificate's private key.
	CAKeyKey = "ca-key.pem"
	// RootCertKey is the root of trust.
	RootCertKey = "root-cert.pem"
	// CertChainKey is the chain from the signing certificate up to the root.
	CertChainKey = "cert-chain.pem"
	// PrivateKeyKey is written empty into istio-ca-secret, as istiod does.
	PrivateKeyKey = "key.pem"
	// SelfSignedSecretType is the Secret type istiod gives istio-ca-secret.
	SelfSignedSecretType = "istio.io/ca-root"
)

// bundle is the CA's signing material: the certificate and key that sign,
// the chain from it toward the root (PEM, possibly empty) and the root PEM.
type bundle struct {
	signCert *x509.Certificate
	signKey  crypto.Signer
	chainPEM []byte
	rootPEM  []byte
}

// newBundle parses and checks signing material the way istiod's
// util.Verify does: the key matches the certificate, the certificate is a
// CA allowed to sign certificates, and it chains to the root through the
// chain. source names the Secret the material came from, for errors.
func newBundle(certPEM, keyPEM, chainPEM, rootPEM []byte, source string) (*bundle, error) {
	certs, err := parseCertsPEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s key %s: %w", source, CACertKey, err)
	}
	cert := certs[0]
	key, err := parseKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s key %s: %w", source, CAKeyKey, err)
	}
	if !publicKeysEqual(key, cert) {
		return nil, fmt.Errorf("%s key %s does not match the certificate in %s", source, CAKeyKey, CACertKey)
	}
	if !cert.IsCA || !cert.BasicConstraintsValid {
		return nil, fmt.Errorf("%s key %s: certificate %q is not a CA (basic constraints CA:TRUE missing)", source, CACertKey, cert.Subject)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return nil, fmt.Errorf("%s key %s: certificate %q lacks the certificate-signing key usage", source, CACertKey, cert.Subject)
	}
	rootCerts, err := parseCertsPEM(rootPEM)
	if err != nil {
		return nil, fmt.Errorf("%s key %s: %w", source, RootCertKey, err)
	}
	roots := x509.NewCertPool()
	for _, r := range rootCerts {
		roots.AddCert(r)
	}
	inter := x509.NewCertPool()
	if len(chainPEM) > 0 {
		chain, err := parseCertsPEM(chainPEM)
		if err != nil {
			return nil, fmt.Errorf("%s key %s: %w", source, CertChainKey, err)
		}
		for _, c := range chain {
			inter.AddCert(c)
		}
	}
	_, err = cert.Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   time.Now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, fmt.Errorf("%s key %s does not chain to %s: %w", source, CACertKey, RootCertKey, err)
	}
	return &bundle{
		signCert: cert,
		signKey:  key,
		chainPEM: chainPEM,
		rootPEM:  rootPEM,
	}, nil
}

// loadPlugged builds the bundle from the data of the cacerts Secret. Every
// key is required; cert-chain.pem may be empty when ca-cert.pem is the root.
func loadPlugged(data map[string][]byte) (*bundle, error) {
	for _, k := range []string{CACertKey, CAKeyKey, RootCertKey} {
		if len(data[k]) == 0 {
			return nil, fmt.Errorf("secret %s: key %s is missing or empty", PluggedSecretName, k)
		}
	}
	if _, ok := data[CertChainKey]; !ok {
		return nil, fmt.Errorf("secret %s: key %s is missing", PluggedSecretName, CertChainKey)
	}
	return newBundle(data[CACertKey], data[CAKeyKey], data[CertChainKey], data[RootCertKey],
		"secret "+PluggedSecretName)
}
