package translate

import (
	"fmt"
	"slices"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/meshd/meshd/internal/model"
)

// SDS resource names of Kubernetes Secrets, as istiod names them
// (pilot/pkg/model/credentials): kubernetes://<name> is the certificate
// and key of Secret <name> of the proxy's namespace,
// kubernetes://<name>-cacert its CA (from Secret <name>-cacert when that
// exists, else from Secret <name>). kubernetes://<namespace>/<name> names
// the namespace explicitly; only the proxy's own is served.
const (
	// credentialPrefix (upstreamtls.go) is "kubernetes://".

	// SecretCASuffix marks the SDS name of a credential's CA
	// (istiod's SdsCaSuffix).
	SecretCASuffix = "-cacert"
)

// SecretName returns the SDS resource name of a credentialName's
// certificate and key: "kubernetes://<name>" (istiod's
// credentials.ToResourceName for a plain name).
func SecretName(credentialName string) string { return credentialPrefix + credentialName }

// CASecretName returns the SDS resource name of a credentialName's CA
// (MUTUAL): "kubernetes://<name>-cacert".
func CASecretName(credentialName string) string {
	return credentialPrefix + credentialName + SecretCASuffix
}

// SecretError says why an SDS secret cannot be served to the proxies of a
// namespace; Secret names the Kubernetes Secret looked for, when the
// resource name parsed.
type SecretError struct {
	Name      string // the SDS resource name
	Namespace string // the proxies'
	Secret    string // "namespace/name" of the Secret, or ""
	Reason    string
}

func (e *SecretError) Error() string {
	return fmt.Sprintf("SDS secret %q for proxies of namespace %s: %s", e.Name, e.Namespace, e.Reason)
}

// secretKey memoises one resolved SDS secret in the Index (sharedValues):
// every scope of a namespace naming it gets the very same value, so it is
// validated and marshalled once per push.
type secretKey struct{ namespace, name string }

type secretResult struct {
	secret *tlsv3.Secret
	err    *SecretError
}

// Secrets resolves SDS resource names (SecretName, CASecretName) for
// proxies of namespace, from the Secrets of that namespace only: a Secret
// of any other namespace is never returned, whatever the name asks for.
// It returns the secrets found, sorted by name, each once, and a
// *SecretError for each name it cannot serve (no such Secret, a Secret
// that failed validation and was never good, no certificate or no CA in
// it, another namespace). Callers (gateway TLS servers) leave out what
// needs a name in errs, so that no listener names a secret its proxy
// cannot get; translate.Validate checks that.
func (x *Index) Secrets(namespace string, names []string) ([]*tlsv3.Secret, []*SecretError) {
	var out []*tlsv3.Secret
	var errs []*SecretError
	for _, name := range slices.Compact(slices.Sorted(slices.Values(names))) {
		r := x.shared.get(secretKey{namespace, name}, func() any { return x.resolveSecret(namespace, name) }).(secretResult)
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		out = append(out, r.secret)
	}
	return out, errs
}

// resolveSecret is istiod's SDS generation for one resource name of the
// kubernetes:// type (pilot/pkg/xds/sds.go), for proxies of namespace.
func (x *Index) resolveSecret(namespace, name string) secretResult {
	fail := func(secret, format string, args ...any) secretResult {
		return secretResult{err: &SecretError{Name: name, Namespace: namespace, Secret: secret, Reason: fmt.Sprintf(format, args...)}}
	}
	rest, ok := strings.CutPrefix(name, credentialPrefix)
	if !ok || rest == "" {
		return fail("", "not a %s<name> resource name", credentialPrefix)
	}
	secretNS, secretName := namespace, rest
	if ns, n, explicit := strings.Cut(rest, "/"); explicit {
		secretNS, secretName = ns, n
	}
	if secretNS != namespace {
		return fail(secretNS+"/"+secretName, "a Secret of namespace %s is never served to proxies of namespace %s", secretNS, namespace)
	}
	if secretName == "" || strings.Contains(secretName, "/") {
		return fail("", "not a %s<name> or %s<namespace>/<name> resource name", credentialPrefix, credentialPrefix)
	}
	if base, isCA := strings.CutSuffix(secretName, SecretCASuffix); isCA {
		// istiod's GetCaCert: Secret <name>-cacert if it exists, else <name>.
		s, ok := x.snap.Secret(namespace, secretName)
		if !ok {
			if s, ok = x.snap.Secret(namespace, base); !ok {
				return fail(namespace+"/"+base, "%s", x.missingSecret(namespace, secretName, base))
			}
		}
		if !s.HasCA() {
			return fail(namespace+"/"+s.Name, "Secret %s/%s has no CA certificate (data[cacert] or data[ca.crt])", namespace, s.Name)
		}
		return secretResult{secret: caSecret(name, s)}
	}
	s, ok := x.snap.Secret(namespace, secretName)
	if !ok {
		return fail(namespace+"/"+secretName, "%s", x.missingSecret(namespace, secretName))
	}
	if !s.HasCertificate() {
		return fail(namespace+"/"+secretName, "Secret %s/%s has no certificate and key (data[tls.crt] and data[tls.key], or data[cert] and data[key])", namespace, secretName)
	}
	return secretResult{secret: certificateSecret(name, s)}
}

// missingSecret says why none of the named Secrets of namespace (one, or
// a CA's two) is held: rejected, with the recorded error, or absent.
func (x *Index) missingSecret(namespace string, names ...string) string {
	for _, n := range names {
		if oe, ok := x.snap.ObjectError(model.KindSecret, namespace, n); ok {
			return fmt.Sprintf("Secret %s/%s is invalid (%s: %s)", namespace, n, oe.Field, oe.Message)
		}
	}
	if len(names) == 1 {
		return fmt.Sprintf("Secret %s/%s does not exist or holds no TLS credential", namespace, names[0])
	}
	return fmt.Sprintf("neither Secret %s/%s nor Secret %s/%s exists with a TLS credential", namespace, names[0], namespace, names[1])
}

// certificateSecret is istiod's toEnvoyTLSSecret without a private key
// provider: the chain and key, inline.
func certificateSecret(name string, s *model.Secret) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: inlineBytes(s.CertChain),
		PrivateKey:       inlineBytes(s.PrivateKey),
	}}}
}

// caSecret is istiod's toEnvoyCaSecret: the CA, and its CRL if any.
func caSecret(name string, s *model.Secret) *tlsv3.Secret {
	vc := &tlsv3.CertificateValidationContext{TrustedCa: inlineBytes(s.CA)}
	if s.CRL != "" {
		vc.Crl = inlineBytes(s.CRL)
	}
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_ValidationContext{ValidationContext: vc}}
}

func inlineBytes(s string) *core.DataSource {
	return &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: []byte(s)}}
}
