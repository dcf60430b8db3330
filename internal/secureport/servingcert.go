package secureport

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/meshd/meshd/internal/ca"
)

// ServingCertTTL is the lifetime of a serving certificate meshd's CA issues
// for the secure port; it is renewed at half its lifetime.
const ServingCertTTL = 24 * time.Hour

// CertSource returns the current serving certificate.
type CertSource interface {
	Current() (*tls.Certificate, error)
}

// Cert providers, as PILOT_CERT_PROVIDER's values.
const (
	ProviderIstiod = "istiod"
	ProviderCustom = "custom"
)

// NewCertSource returns the serving certificate of provider: issued by c for
// dnsNames (istiod), or read from customDir (custom).
func NewCertSource(provider string, c *ca.CA, dnsNames []string, customDir string, log *slog.Logger) (CertSource, error) {
	switch provider {
	case ProviderIstiod:
		return NewCASource(c, dnsNames, ServingCertTTL, log)
	case ProviderCustom:
		return NewFileSource(customDir)
	}
	return nil, fmt.Errorf("PILOT_CERT_PROVIDER %q: want %s or %s", provider, ProviderIstiod, ProviderCustom)
}

// CASource is the secure port's serving certificate issued by meshd's CA for
// istiod's DNS names (PILOT_CERT_PROVIDER=istiod), reissued once half its
// lifetime has passed. It is safe for concurrent use.
type CASource struct {
	ca    *ca.CA
	names []string
	ttl   time.Duration
	log   *slog.Logger
	now   func() time.Time

	mu    sync.Mutex
	cert  *tls.Certificate
	renew time.Time // when to reissue
}

// NewCASource issues a first serving certificate for names at once, so
// that a CA that cannot issue one stops start-up.
func NewCASource(c *ca.CA, names []string, ttl time.Duration, log *slog.Logger) (*CASource, error) {
	if ttl <= 0 {
		ttl = ServingCertTTL
	}
	s := &CASource{ca: c, names: names, ttl: ttl, log: log, now: time.Now}
	if _, err := s.Current(); err != nil {
		return nil, err
	}
	return s, nil
}

// Current returns the certificate, reissuing it when it is due. A failed
// reissue keeps serving the old certificate (logged) until it expires.
func (s *CASource) Current() (*tls.Certificate, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.cert != nil && now.Before(s.renew) {
		return s.cert, nil
	}
	chain, key, err := s.ca.ServingCert(s.names, s.ttl)
	if err == nil {
		var c tls.Certificate
		if c, err = tls.X509KeyPair(chain, key); err == nil {
			s.cert, s.renew = &c, halfLife(c.Leaf)
			s.log.Info("secure port serving certificate issued", "dnsNames", s.names, "notAfter", c.Leaf.NotAfter)
			return s.cert, nil
		}
	}
	if s.cert != nil && now.Before(s.cert.Leaf.NotAfter) {
		s.log.Error("renewing the secure port's serving certificate failed; the current one is kept", "error", err)
		return s.cert, nil
	}
	return nil, fmt.Errorf("issuing the secure port's serving certificate: %w", err)
}

// halfLife is when a certificate is half through its validity.
func halfLife(leaf *x509.Certificate) time.Time {
	return leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
}

// FileSource is a serving certificate read from tls.crt and tls.key of a
// directory (PILOT_CERT_PROVIDER=custom, istiod's
// ./var/run/secrets/istiod/tls), re-read when either file changes.
type FileSource struct {
	dir string

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
}

// NewFileSource reads the certificate once, so a missing or broken pair
// stops start-up.
func NewFileSource(dir string) (*FileSource, error) {
	s := &FileSource{dir: dir}
	if _, err := s.Current(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FileSource) Current() (*tls.Certificate, error) {
	crt, key := filepath.Join(s.dir, "tls.crt"), filepath.Join(s.dir, "tls.key")
	mod, err := latestModTime(crt, key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil && s.cert != nil && !mod.After(s.modTime) {
		return s.cert, nil
	}
	if err == nil {
		var c tls.Certificate
		if c, err = tls.LoadX509KeyPair(crt, key); err == nil {
			s.cert, s.modTime = &c, mod
			return s.cert, nil
		}
	}
	if s.cert != nil {
		return s.cert, nil // a half-written rotation: keep the last good pair
	}
	return nil, fmt.Errorf("custom serving certificate (PILOT_CERT_PROVIDER=custom): %w", err)
}

// latestModTime is the newest modification time of files.
func latestModTime(files ...string) (time.Time, error) {
	var latest time.Time
	for _, f := range files {
		fi, err := os.Stat(f)
		if err != nil {
			return time.Time{}, err
		}
		if fi.ModTime().After(latest) {
			latest = fi.ModTime()
		}
	}
	return latest, nil
}

// TLSConfig returns the server TLS configuration serving src's current
// certificate, TLS 1.2 or later, offering h2 (gRPC) only.
func TLSConfig(src CertSource) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return src.Current()
		},
	}
}
