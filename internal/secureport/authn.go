package secureport

import (
	"context"
	"errors"

	"k8s.io/client-go/kubernetes"

	"github.com/meshd/meshd/internal/ca"
)

// Authenticator checks a caller's service-account token: from the gRPC
// metadata of a call (Authenticate) or given (AuthenticateToken).
// *ca.Authenticator and *ca.StaticAuthenticator are ones.
type Authenticator interface {
	ca.CallerAuthenticator
	AuthenticateToken(ctx context.Context, token string) (ca.Identity, error)
}

// AuthnOptions choose the secure port's authenticator.
type AuthnOptions struct {
	// StaticTokens is a file of "TOKEN NAMESPACE SERVICEACCOUNT" lines; when
	// set it is used instead of TokenReview.
	StaticTokens string
	// Client asks the Kubernetes API (TokenReview); nil for the file provider.
	Client kubernetes.Interface
	// TrustDomain and Audiences as ca.AuthenticatorOptions.
	TrustDomain string
	Audiences   []string
}

// ErrNoAuthenticator is returned by NewAuthenticator when there is nothing
// to authenticate callers with: the file provider without static tokens.
var ErrNoAuthenticator = errors.New("no authenticator: the file provider has no TokenReview API; give --static-tokens")

// NewAuthenticator returns the static authenticator when o.StaticTokens is
// set, else the TokenReview one when o.Client is set.
func NewAuthenticator(o AuthnOptions) (Authenticator, error) {
	switch {
	case o.StaticTokens != "":
		return ca.LoadStaticTokens(o.StaticTokens, o.TrustDomain)
	case o.Client != nil:
		return ca.NewAuthenticator(ca.KubeTokenReviewer{Client: o.Client.AuthenticationV1()},
			ca.AuthenticatorOptions{TrustDomain: o.TrustDomain, Audiences: o.Audiences}), nil
	}
	return nil, ErrNoAuthenticator
}
