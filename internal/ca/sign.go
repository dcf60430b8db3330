package ca

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// ClockSkewGracePeriod backdates NotBefore of issued certificates, as
// istiod's util.ClockSkewGracePeriod.
const ClockSkewGracePeriod = 2 * time.Minute

// ErrTTL is wrapped by Sign when the requested TTL exceeds the maximum.
var ErrTTL = errors.New("requested TTL exceeds the maximum")

// ErrIdentityMismatch is wrapped by Sign when the CSR asks for an identity
// other than the authenticated caller's.
var ErrIdentityMismatch = errors.New("CSR identity does not match the caller")

// Sign issues a workload certificate for the authenticated caller id from a
// PEM CSR. The CSR's signature must verify and its only subject alternative
// name must be id's SPIFFE URI. ttl <= 0 means the default TTL; a ttl above
// the maximum is refused (wrapping ErrTTL), as istiod does.
//
// The result is shaped like istiod's CreateCertificate response: the leaf
// first, then each certificate of the signing chain, then the root PEM last.
func (c *CA) Sign(csrPEM []byte, id Identity, ttl time.Duration) ([]string, error) {
	if err := id.validate(); err != nil {
		return nil, fmt.Errorf("signing CSR: %w", err)
	}
	csr, err := parseCSR(csrPEM)
	if err != nil {
		return nil, fmt.Errorf("signing CSR for %s: %w", id.SPIFFEID(), err)
	}
	want := id.SPIFFEID()
	if err := checkCSRIdentity(csr, want); err != nil {
		return nil, fmt.Errorf("signing CSR for %s: %w", want, err)
	}
	lifetime, err := c.lifetime(ttl, true)
	if err != nil {
		return nil, fmt.Errorf("signing CSR for %s: %w", want, err)
	}
	u, err := url.Parse(want)
	if err != nil {
		return nil, fmt.Errorf("signing CSR for %s: parsing SPIFFE ID: %w", want, err)
	}
	tmpl := leafTemplate(lifetime)
	tmpl.URIs = []*url.URL{u}
	leaf, err := c.issue(tmpl, csr.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("signing CSR for %s: %w", want, err)
	}
	chain := []string{string(leaf)}
	chain = append(chain, splitCertsPEM(c.bundle.chainPEM)...)
	return append(chain, string(c.bundle.rootPEM)), nil
}

// parseCSR decodes a PEM CSR and checks its signature.
func parseCSR(csrPEM []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(csrPEM)
	if block == nil {
		return nil, errors.New("no PEM certificate request found")
	}
	if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("unexpected PEM block %q, want CERTIFICATE REQUEST", block.Type)
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing certificate request: %w", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("certificate request signature: %w", err)
	}
	return csr, nil
}

// checkCSRIdentity requires the CSR to name exactly the SPIFFE ID want and
// nothing else (no other URI, DNS name, IP address or e-mail).
func checkCSRIdentity(csr *x509.CertificateRequest, want string) error {
	if len(csr.DNSNames)+len(csr.IPAddresses)+len(csr.EmailAddresses) > 0 {
		return fmt.Errorf("%w: CSR carries DNS, IP or e-mail names; only the URI %s is allowed", ErrIdentityMismatch, want)
	}
	if len(csr.URIs) != 1 {
		return fmt.Errorf("%w: CSR has %d URI SANs, want exactly %s", ErrIdentityMismatch, len(csr.URIs), want)
	}
	if got := csr.URIs[0].String(); got != want {
		return fmt.Errorf("%w: CSR asks for %s, caller is %s", ErrIdentityMismatch, got, want)
	}
	return nil
}

// lifetime applies istiod's TTL rules: non-positive means the default, and
// with checkMax a TTL above the maximum is an error.
func (c *CA) lifetime(ttl time.Duration, checkMax bool) (time.Duration, error) {
	if checkMax && ttl > c.opts.MaxCertTTL {
		return 0, fmt.Errorf("%w: requested TTL %s is greater than the max allowed TTL %s", ErrTTL, ttl, c.opts.MaxCertTTL)
	}
	if ttl <= 0 {
		return c.opts.DefaultCertTTL, nil
	}
	return ttl, nil
}

// leafTemplate is istiod's workload certificate template (genCertTemplateFromCSR):
// not a CA, digital signature and key encipherment, server and client auth,
// NotBefore backdated by ClockSkewGracePeriod.
func leafTemplate(ttl time.Duration) *x509.Certificate {
	now := time.Now()
	return &x509.Certificate{
		NotBefore:             now.Add(-ClockSkewGracePeriod),
		NotAfter:              now.Add(ttl),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:                  false,
		BasicConstraintsValid: true,
	}
}

// issue signs tmpl for pub with the CA's key and returns the PEM leaf. As
// istiod, it refuses when the signing certificate has expired and clamps
// NotAfter to the signing certificate's.
func (c *CA) issue(tmpl *x509.Certificate, pub crypto.PublicKey) ([]byte, error) {
	signer := c.bundle.signCert
	if !time.Now().Before(signer.NotAfter) {
		return nil, fmt.Errorf("signing certificate expired at %s", signer.NotAfter)
	}
	if tmpl.NotAfter.After(signer.NotAfter) {
		tmpl.NotAfter = signer.NotAfter
	}
	serial, err := serialNumber()
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, signer, pub, c.bundle.signKey)
	if err != nil {
		return nil, fmt.Errorf("creating certificate: %w", err)
	}
	return encodeCertPEM(der), nil
}
