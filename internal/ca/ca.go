package ca

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Defaults, as istiod's (security/pkg/cmd/constants.go and
// pilot/pkg/bootstrap/istio_ca.go).
const (
	// DefaultWorkloadCertTTL is DEFAULT_WORKLOAD_CERT_TTL's default: the TTL
	// used when a request asks for none.
	DefaultWorkloadCertTTL = 24 * time.Hour
	// DefaultMaxWorkloadCertTTL is MAX_WORKLOAD_CERT_TTL's default.
	DefaultMaxWorkloadCertTTL = 90 * 24 * time.Hour
	// DefaultSelfSignedCACertTTL is CITADEL_SELF_SIGNED_CA_CERT_TTL's default.
	DefaultSelfSignedCACertTTL = 3650 * 24 * time.Hour
	// DefaultRSAKeySize is CITADEL_SELF_SIGNED_CA_RSA_KEY_SIZE's default.
	DefaultRSAKeySize = 2048
	// DefaultNamespace is where istiod keeps its CA Secrets.
	DefaultNamespace = "istio-system"
	// DefaultTrustDomain is the mesh's default trust domain.
	DefaultTrustDomain = "cluster.local"
)

// Options configure a CA. Zero fields take the defaults above.
type Options struct {
	// Namespace holds the cacerts and istio-ca-secret Secrets.
	Namespace string
	// TrustDomain is the organisation of a self-signed root.
	TrustDomain string
	// DefaultCertTTL applies when a request's TTL is zero or negative.
	DefaultCertTTL time.Duration
	// MaxCertTTL is the longest workload TTL a request may ask for.
	MaxCertTTL time.Duration
	// SelfSignedCACertTTL is the lifetime of a newly created self-signed root.
	SelfSignedCACertTTL time.Duration
	// RSAKeySize is the key size of a newly created self-signed root.
	RSAKeySize int
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.TrustDomain == "" {
		o.TrustDomain = DefaultTrustDomain
	}
	if o.DefaultCertTTL <= 0 {
		o.DefaultCertTTL = DefaultWorkloadCertTTL
	}
	if o.MaxCertTTL <= 0 {
		o.MaxCertTTL = DefaultMaxWorkloadCertTTL
	}
	if o.SelfSignedCACertTTL <= 0 {
		o.SelfSignedCACertTTL = DefaultSelfSignedCACertTTL
	}
	if o.RSAKeySize <= 0 {
		o.RSAKeySize = DefaultRSAKeySize
	}
	return o
}

// Source says where a CA's signing material came from.
type Source string

// The two sources of signing material.
const (
	SourcePlugged    Source = PluggedSecretName
	SourceSelfSigned Source = SelfSignedSecretName
)

// CA signs workload and serving certificates. It is immutable once built and
// safe for concurrent use.
type CA struct {
	opts   Options
	bundle *bundle
	source Source
}

// New builds the CA as istiod does: from the plug-in cacerts Secret when it
// exists, otherwise from the self-signed root in istio-ca-secret, which is
// created if absent. A cacerts Secret that exists but is broken is an error,
// never a silent fall back to a self-signed root.
func New(ctx context.Context, store SecretStore, opts Options) (*CA, error) {
	opts = opts.withDefaults()
	data, err := store.Get(ctx, opts.Namespace, PluggedSecretName)
	switch {
	case err == nil:
		b, err := loadPlugged(data)
		if err != nil {
			return nil, fmt.Errorf("loading plug-in CA: %w", err)
		}
		return &CA{opts: opts, bundle: b, source: SourcePlugged}, nil
	case errors.Is(err, ErrNotFound):
		b, err := loadOrCreateSelfSigned(ctx, store, opts)
		if err != nil {
			return nil, fmt.Errorf("loading self-signed CA: %w", err)
		}
		return &CA{opts: opts, bundle: b, source: SourceSelfSigned}, nil
	default:
		return nil, fmt.Errorf("reading secret %s/%s: %w", opts.Namespace, PluggedSecretName, err)
	}
}

// Source reports which Secret the signing material came from.
func (c *CA) Source() Source { return c.source }

// Root returns the root certificate PEM, the content of the
// istio-ca-root-cert ConfigMap's root-cert.pem key.
func (c *CA) Root() []byte {
	return append([]byte(nil), c.bundle.rootPEM...)
}

// MaxCertTTL is the longest TTL Sign accepts.
func (c *CA) MaxCertTTL() time.Duration { return c.opts.MaxCertTTL }
