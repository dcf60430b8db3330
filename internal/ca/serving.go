package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"slices"
	"time"
)

// IstiodDNSNames returns the DNS names istiod's serving certificate carries
// in namespace ns: host (the discovery address host, e.g.
// istiod.istio-system.svc, may be empty), extra custom hosts, and the known
// names istiod, istiod-remote and istio-pilot as <name>.<ns>.svc; sorted and
// without duplicates, as istiod's getDNSNames.
func IstiodDNSNames(ns, host string, extra ...string) []string {
	names := append([]string{}, extra...)
	if host != "" {
		names = append(names, host)
	}
	for _, n := range []string{"istiod", "istiod-remote", "istio-pilot"} {
		names = append(names, n+"."+ns+".svc")
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// ServingCert issues a serving certificate for dnsNames with a fresh key of
// the CA key's kind (ECDSA on the same curve, else RSA 2048), as istiod's
// GenKeyCert. ttl is not bounded by the workload maximum (istiod uses the
// self-signed CA TTL); ttl <= 0 means the default workload TTL. It returns the
// PEM leaf followed by the signing chain, and the PEM private key.
func (c *CA) ServingCert(dnsNames []string, ttl time.Duration) (certChainPEM, keyPEM []byte, err error) {
	if len(dnsNames) == 0 {
		return nil, nil, errors.New("serving certificate: no DNS names")
	}
	key, err := c.newLeafKey()
	if err != nil {
		return nil, nil, fmt.Errorf("serving certificate for %v: %w", dnsNames, err)
	}
	lifetime, err := c.lifetime(ttl, false)
	if err != nil {
		return nil, nil, fmt.Errorf("serving certificate for %v: %w", dnsNames, err)
	}
	tmpl := leafTemplate(lifetime)
	tmpl.DNSNames = append([]string(nil), dnsNames...)
	leaf, err := c.issue(tmpl, key.Public())
	if err != nil {
		return nil, nil, fmt.Errorf("serving certificate for %v: %w", dnsNames, err)
	}
	keyPEM, err = encodeKeyPEM(key)
	if err != nil {
		return nil, nil, fmt.Errorf("serving certificate for %v: %w", dnsNames, err)
	}
	return append(leaf, c.bundle.chainPEM...), keyPEM, nil
}

// newLeafKey generates a key of the same kind as the CA's signing key.
func (c *CA) newLeafKey() (crypto.Signer, error) {
	if ec, ok := c.bundle.signKey.(*ecdsa.PrivateKey); ok {
		k, err := ecdsa.GenerateKey(ec.Curve, rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("generating ECDSA key: %w", err)
		}
		return k, nil
	}
	k, err := rsa.GenerateKey(rand.Reader, DefaultRSAKeySize)
	if err != nil {
		return nil, fmt.Errorf("generating RSA key: %w", err)
	}
	return k, nil
}
