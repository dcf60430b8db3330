package model

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
)

// Data keys of TLS credentials, as istiod reads them
// (pilot/pkg/credentials/kube/secrets.go): Istio's generic layout first,
// then the kubernetes.io/tls one.
const (
	SecretKeyGenericCert = "cert"
	SecretKeyGenericKey  = "key"
	SecretKeyGenericCA   = "cacert"
	SecretKeyGenericCRL  = "crl"
	SecretKeyTLSCert     = "tls.crt"
	SecretKeyTLSKey      = "tls.key"
	SecretKeyTLSCA       = "ca.crt"
	SecretKeyTLSCRL      = "ca.crl"
)

// SecretDataKeys lists every data key NewSecret reads; providers may drop
// the others before keeping a Secret.
var SecretDataKeys = []string{
	SecretKeyGenericCert, SecretKeyGenericKey, SecretKeyGenericCA, SecretKeyGenericCRL,
	SecretKeyTLSCert, SecretKeyTLSKey, SecretKeyTLSCA, SecretKeyTLSCRL,
}

// NewSecret reads a TLS credential from a Kubernetes Secret's data, as
// istiod does: a certificate and key under cert/key, else
// tls.crt/tls.key; a CA under cacert, else ca.crt (an empty CA value is
// absent: cert-manager leaves ca.crt empty for some issuers); a CRL under
// crl or ca.crl, next to the CA. It returns nil and no error when data
// holds no credential (an unrelated Secret), and an ObjectError naming the
// data key (data[tls.key]) when it holds one Envoy cannot load: not PEM,
// a private key that does not match the certificate, a key type or size
// Envoy refuses. An expired certificate is not an error (Secret.Expiry).
func NewSecret(namespace, name string, data map[string][]byte) (*Secret, *ObjectError) {
	s := &Secret{Namespace: namespace, Name: name}
	fail := func(key, msg string) (*Secret, *ObjectError) {
		return nil, &ObjectError{Kind: KindSecret, Namespace: namespace, Name: name, Field: "data[" + key + "]", Message: msg}
	}
	certKey, keyKey, problem := pickPair(data)
	if problem != "" {
		return fail(certKey, problem)
	}
	if certKey != "" {
		leaf, atKey, problem := checkKeyPair(data[certKey], data[keyKey])
		switch {
		case problem != "" && atKey:
			return fail(keyKey, problem)
		case problem != "":
			return fail(certKey, problem)
		}
		s.Keys.Cert, s.Keys.Key = certKey, keyKey
		s.CertChain, s.PrivateKey = string(data[certKey]), string(data[keyKey])
		s.NotBefore, s.NotAfter = leaf.NotBefore, leaf.NotAfter
	}
	if caKey, crlKey := pickCA(data); caKey != "" {
		if _, problem := parseCertificates(data[caKey]); problem != "" {
			return fail(caKey, problem)
		}
		s.Keys.CA, s.CA = caKey, string(data[caKey])
		if len(data[crlKey]) > 0 {
			if problem := checkCRL(data[crlKey]); problem != "" {
				return fail(crlKey, problem)
			}
			s.Keys.CRL, s.CRL = crlKey, string(data[crlKey])
		}
	}
	if s.CertChain == "" && s.CA == "" {
		return nil, nil
	}
	return s, nil
}

// pickPair chooses the certificate and key keys as istiod does. problem
// explains a pair that is present but unusable, certKey then naming the
// key at fault: empty values, or a tls.crt without tls.key (or the other
// way round). A lone cert or key (generic names, maybe not TLS at all) is
// ignored.
func pickPair(data map[string][]byte) (certKey, keyKey, problem string) {
	pairs := [...][2]string{{SecretKeyGenericCert, SecretKeyGenericKey}, {SecretKeyTLSCert, SecretKeyTLSKey}}
	for _, p := range pairs {
		if len(data[p[0]]) > 0 && len(data[p[1]]) > 0 {
			return p[0], p[1], ""
		}
	}
	for _, p := range pairs {
		_, hasCert := data[p[0]]
		_, hasKey := data[p[1]]
		if hasCert && hasKey {
			return p[0], "", fmt.Sprintf("data[%s] and data[%s] are present but empty", p[0], p[1])
		}
	}
	_, crt := data[SecretKeyTLSCert]
	_, key := data[SecretKeyTLSKey]
	switch {
	case crt && !key:
		return SecretKeyTLSKey, "", "missing: data[tls.crt] has no private key next to it"
	case key && !crt:
		return SecretKeyTLSCert, "", "missing: data[tls.key] has no certificate next to it"
	}
	return "", "", ""
}

// pickCA chooses the CA key as istiod does (cacert, else ca.crt; empty
// values count as absent) and the CRL key of that layout.
func pickCA(data map[string][]byte) (caKey, crlKey string) {
	switch {
	case len(data[SecretKeyGenericCA]) > 0:
		return SecretKeyGenericCA, SecretKeyGenericCRL
	case len(data[SecretKeyTLSCA]) > 0:
		return SecretKeyTLSCA, SecretKeyTLSCRL
	}
	return "", ""
}

// parseCertificates parses every CERTIFICATE block of a PEM bundle; at
// least one is required. Other blocks are skipped. err is "" when it
// parsed.
func parseCertificates(b []byte) (certs []*x509.Certificate, problem string) {
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, perr := x509.ParseCertificate(block.Bytes)
		if perr != nil {
			return nil, fmt.Sprintf("certificate %d does not parse: %v", len(certs)+1, perr)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, "not PEM: no CERTIFICATE block found"
	}
	return certs, ""
}

// checkKeyPair parses the chain and the key and checks that the key is
// the leaf's and of a kind Envoy loads. atKey says whether the key, not
// the chain, is at fault.
func checkKeyPair(chain, key []byte) (leaf *x509.Certificate, atKey bool, problem string) {
	certs, problem := parseCertificates(chain)
	if problem != "" {
		return nil, false, problem
	}
	leaf = certs[0]
	if problem := envoyKeyType(leaf.PublicKey); problem != "" {
		return nil, false, problem
	}
	priv, problem := parsePrivateKey(key)
	if problem != "" {
		return nil, true, problem
	}
	pub, ok := priv.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return nil, true, "private key does not match the certificate (the first certificate of the chain)"
	}
	return leaf, false, ""
}

// envoyKeyType refuses the public keys Envoy 1.40 refuses (checked with
// it): RSA under 2048 bits, ECDSA on curves other than P-256, P-384 and
// P-521, anything but RSA, ECDSA and Ed25519.
func envoyKeyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return fmt.Sprintf("RSA key of %d bits: Envoy loads RSA keys of 2048 bits or more", k.N.BitLen())
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Sprintf("ECDSA curve %s: Envoy loads P-256, P-384 and P-521", k.Curve.Params().Name)
		}
	default:
		return fmt.Sprintf("%T certificate: Envoy loads RSA, ECDSA and Ed25519 certificates", pub)
	}
	return ""
}

// parsePrivateKey parses the first private key block (PKCS#1, SEC 1 or
// PKCS#8), skipping others such as EC PARAMETERS.
func parsePrivateKey(b []byte) (crypto.Signer, string) {
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, "not PEM: no PRIVATE KEY block found"
		}
		if !strings.HasSuffix(block.Type, "PRIVATE KEY") {
			continue
		}
		var k any
		var err error
		switch block.Type {
		case "ENCRYPTED PRIVATE KEY":
			return nil, "encrypted private key: Envoy has no passphrase to decrypt it"
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		default:
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		}
		if err != nil {
			return nil, fmt.Sprintf("%s does not parse: %v", block.Type, err)
		}
		signer, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Sprintf("%T private key is not supported", k)
		}
		return signer, ""
	}
}

// checkCRL parses the first X509 CRL block of a PEM CRL.
func checkCRL(b []byte) string {
	rest := b
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return "not PEM: no X509 CRL block found"
		}
		if block.Type != "X509 CRL" {
			continue
		}
		if _, err := x509.ParseRevocationList(block.Bytes); err != nil {
			return "CRL does not parse: " + err.Error()
		}
		return ""
	}
}
