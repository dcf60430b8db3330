package model

import (
	"fmt"
	"log/slog"
	"time"
)

// KindSecret is the kind of TLS credentials read from Kubernetes Secrets
// (a gateway's credentialName). Secrets are not Istio config: they are
// not in ConfigKinds, and nothing lists them in a debug view.
const KindSecret Kind = "Secret"

// Secret is a TLS credential: a certificate chain and its private key, a
// CA bundle, or both, from one Kubernetes Secret. NewSecret builds it from
// the Secret's data and validates it. Its fields are strings, so a Secret
// is immutable; it is never logged or printed with its private key
// (Format, LogValue).
type Secret struct {
	Namespace, Name string
	// CertChain is the PEM certificate chain, leaf first; PrivateKey the
	// PEM private key of the leaf. Both are empty in a CA-only Secret.
	CertChain, PrivateKey string
	// CA is the PEM CA bundle peers are verified against (MUTUAL), and
	// CRL the PEM revocation list that goes with it; empty when absent.
	CA, CRL string
	// Keys name the data keys the values came from ("tls.crt" or "cert",
	// ...), for error messages and fields.
	Keys SecretKeys
	// NotBefore and NotAfter bound the leaf certificate's validity; zero
	// in a CA-only Secret. An expired certificate is served (Envoy accepts
	// it, as istiod serves it) and noted by the providers (Expiry).
	NotBefore, NotAfter time.Time
	// Source says where it came from: "file.yaml#2" or "kube".
	Source string
}

// SecretKeys are the data keys a Secret's values were read from ("" when
// the value is absent).
type SecretKeys struct {
	Cert, Key, CA, CRL string
}

// HasCertificate reports whether the Secret holds a certificate and key
// (istiod's kubernetes://<name>).
func (s *Secret) HasCertificate() bool { return s.CertChain != "" }

// HasCA reports whether the Secret holds a CA bundle (istiod's
// kubernetes://<name>-cacert).
func (s *Secret) HasCA() bool { return s.CA != "" }

// Expiry returns a note when the leaf certificate is not valid at now
// (expired, or not valid yet), "" otherwise. It is a note, not an error:
// the Secret is still served.
func (s *Secret) Expiry(now time.Time) string {
	switch {
	case s.NotAfter.IsZero():
		return ""
	case now.After(s.NotAfter):
		return fmt.Sprintf("certificate in data[%s] expired at %s; it is served all the same", s.Keys.Cert, s.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(s.NotBefore):
		return fmt.Sprintf("certificate in data[%s] is not valid before %s; it is served all the same", s.Keys.Cert, s.NotBefore.UTC().Format(time.RFC3339))
	}
	return ""
}

// String describes the Secret without its private key.
func (s *Secret) String() string {
	if s == nil {
		return "<nil>"
	}
	return fmt.Sprintf("Secret %s/%s (certificate %t, CA %t, not after %s)", s.Namespace, s.Name,
		s.HasCertificate(), s.HasCA(), s.NotAfter.UTC().Format(time.RFC3339))
}

// Format prints the Secret as String does, whatever the verb (%v, %+v,
// %#v, %s): its private key never reaches a log or an error message.
func (s *Secret) Format(f fmt.State, _ rune) { _, _ = fmt.Fprint(f, s.String()) }

// LogValue is the Secret in structured logs, without its private key.
func (s *Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Secret returns the Secret namespace/name, if the Snapshot holds it.
func (s *Snapshot) Secret(namespace, name string) (*Secret, bool) {
	o, ok := s.objects[KindSecret][namespace+"/"+name]
	if !ok {
		return nil, false
	}
	return o.(*Secret), true
}

// ObjectError returns the error recorded for the object of kind k named
// namespace/name, if any (its last good version, if any, is still held).
func (s *Snapshot) ObjectError(k Kind, namespace, name string) (ObjectError, bool) {
	e, ok := s.errors[objectKey(k, namespace, name)]
	return e, ok
}
