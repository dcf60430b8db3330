// Package testcerts makes PEM certificates and keys for tests: a CA, leaf
// certificates it signs, and the odd ones validation must refuse. Nothing
// outside tests uses it.
package testcerts

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"sync/atomic"
	"time"
)

// Cert is a PEM certificate with its PEM private key.
type Cert struct {
	CertPEM, KeyPEM []byte
	cert            *x509.Certificate
	key             crypto.Signer
}

// Options shape a certificate; the zero value is a P-256 key valid from an
// hour ago for a year.
type Options struct {
	// NotBefore and NotAfter default to an hour ago and a year from now.
	NotBefore, NotAfter time.Time
	// RSABits, when set, makes an RSA key of that size instead of P-256;
	// Ed25519 an Ed25519 key.
	RSABits int
	Ed25519 bool
	// Organization is the subject's O, after its CN.
	Organization []string
	// DNSNames, IPs and URIs are the certificate's DNS, IP and URI SANs.
	DNSNames []string
	IPs      []net.IP
	URIs     []*url.URL
	// KeyUsage, when set, replaces the default key usage (digital
	// signature and key encipherment, plus certificate and CRL signing
	// for a CA), e.g. for a CA that may not sign.
	KeyUsage x509.KeyUsage
}

var serial atomic.Int64

// NewCA returns a self-signed CA certificate.
func NewCA(cn string, o Options) *Cert { return issue(cn, o, nil, true) }

// NewIntermediate returns a CA certificate signed by ca.
func NewIntermediate(cn string, ca *Cert, o Options) *Cert { return issue(cn, o, ca, true) }

// NewLeaf returns a certificate for cn signed by ca (self-signed when ca
// is nil).
func NewLeaf(cn string, ca *Cert, o Options) *Cert { return issue(cn, o, ca, false) }

func issue(cn string, o Options, ca *Cert, isCA bool) *Cert {
	var key crypto.Signer
	var err error
	switch {
	case o.RSABits > 0:
		key, err = rsa.GenerateKey(rand.Reader, o.RSABits)
	case o.Ed25519:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		panic(err)
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)), Subject: pkix.Name{CommonName: cn, Organization: o.Organization},
		NotBefore: o.NotBefore, NotAfter: o.NotAfter, DNSNames: o.DNSNames, IPAddresses: o.IPs, URIs: o.URIs,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true, IsCA: isCA,
	}
	if isCA {
		tmpl.KeyUsage |= x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if o.KeyUsage != 0 {
		tmpl.KeyUsage = o.KeyUsage
	}
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), signer)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	return &Cert{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		cert:    cert, key: key,
	}
}

// Certificate returns the parsed certificate.
func (c *Cert) Certificate() *x509.Certificate { return c.cert }

// CRL returns an empty PEM revocation list signed by the CA c.
func (c *Cert) CRL() []byte {
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Hour), NextUpdate: time.Now().Add(24 * time.Hour),
	}, c.cert, c.key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der})
}
