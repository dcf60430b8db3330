package ca

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// loadOrCreateSelfSigned returns the self-signed root kept in
// istio-ca-secret, creating the Secret when it does not exist. When another
// replica wins the race to create it, the winner's root is read back and
// used, so every replica signs with the same root.
func loadOrCreateSelfSigned(ctx context.Context, store SecretStore, opts Options) (*bundle, error) {
	ns := opts.Namespace
	data, err := store.Get(ctx, ns, SelfSignedSecretName)
	if err == nil {
		return loadSelfSigned(data, ns)
	}
	if !errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("reading secret %s/%s: %w", ns, SelfSignedSecretName, err)
	}
	certPEM, keyPEM, err := generateRoot(opts.TrustDomain, opts.SelfSignedCACertTTL, opts.RSAKeySize)
	if err != nil {
		return nil, fmt.Errorf("generating self-signed root: %w", err)
	}
	// The same keys istiod's BuildSecret writes, so istiod and meshd can
	// read each other's Secret.
	data = map[string][]byte{
		CACertKey:     certPEM,
		CAKeyKey:      keyPEM,
		RootCertKey:   certPEM,
		CertChainKey:  nil,
		PrivateKeyKey: nil,
	}
	err = store.Create(ctx, ns, SelfSignedSecretName, data)
	if errors.Is(err, ErrAlreadyExists) {
		// Lost the race: use the root the winner stored.
		data, err = store.Get(ctx, ns, SelfSignedSecretName)
		if err != nil {
			return nil, fmt.Errorf("re-reading secret %s/%s after a create conflict: %w", ns, SelfSignedSecretName, err)
		}
		return loadSelfSigned(data, ns)
	}
	if err != nil {
		return nil, fmt.Errorf("creating secret %s/%s: %w", ns, SelfSignedSecretName, err)
	}
	return loadSelfSigned(data, ns)
}

// loadSelfSigned builds the bundle from istio-ca-secret's data. As istiod
// does, only ca-cert.pem and ca-key.pem are read: the CA certificate is its
// own root.
func loadSelfSigned(data map[string][]byte, ns string) (*bundle, error) {
	source := "secret " + ns + "/" + SelfSignedSecretName
	for _, k := range []string{CACertKey, CAKeyKey} {
		if len(data[k]) == 0 {
			return nil, fmt.Errorf("%s: key %s is missing or empty", source, k)
		}
	}
	return newBundle(data[CACertKey], data[CAKeyKey], nil, data[CACertKey], source)
}

// generateRoot creates a self-signed root with istiod's defaults: an RSA key
// of rsaBits, the trust domain as organisation, usage cert-sign only, valid
// from now for ttl.
func generateRoot(org string, ttl time.Duration, rsaBits int) (certPEM, keyPEM []byte, err error) {
	key, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, nil, fmt.Errorf("generating RSA-%d key: %w", rsaBits, err)
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{org}},
		NotBefore:             now,
		NotAfter:              now.Add(ttl),
		KeyUsage:              x509.KeyUsageCertSign,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("signing root certificate: %w", err)
	}
	keyPEM, err = encodeKeyPEM(crypto.Signer(key))
	if err != nil {
		return nil, nil, err
	}
	return encodeCertPEM(der), keyPEM, nil
}

// serialNumber returns a random 128-bit serial number, as istiod's
// genSerialNum.
func serialNumber() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return nil, fmt.Errorf("generating serial number: %w", err)
	}
	return n, nil
}
