package ca

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"
	authnv1 "k8s.io/api/authentication/v1"
)

// Defaults of the authentication cache.
const (
	// DefaultAuthnCacheTTL is how long a positive TokenReview result is
	// reused, unless the token expires sooner.
	DefaultAuthnCacheTTL = time.Minute
	// DefaultAuthnCacheSize bounds the number of cached results.
	DefaultAuthnCacheSize = 4096
)

// serviceAccountsGroup is the group the API server puts every
// service-account token's user in.
const serviceAccountsGroup = "system:serviceaccounts"

// ErrUnauthenticated is wrapped by every error Authenticate returns: the
// caller could not be authenticated (no token, or a token Kubernetes does not
// accept as a service-account token for the CA's audience).
var ErrUnauthenticated = errors.New("unauthenticated")

// AuthenticatorOptions configure an Authenticator. Zero fields take
// defaults.
type AuthenticatorOptions struct {
	// TrustDomain is put in every returned Identity (DefaultTrustDomain).
	TrustDomain string
	// Audiences the token must carry one of ([DefaultTokenAudience]), as
	// istiod's TOKEN_AUDIENCES.
	Audiences []string
	// CacheTTL is how long a positive result is reused (DefaultAuthnCacheTTL);
	// negative disables the cache.
	CacheTTL time.Duration
	// CacheSize bounds the cache (DefaultAuthnCacheSize).
	CacheSize int
	// Now is the clock (time.Now); tests replace it.
	Now func() time.Time
}

// withDefaults returns o with every zero field set to its default.
func (o AuthenticatorOptions) withDefaults() AuthenticatorOptions {
	if o.TrustDomain == "" {
		o.TrustDomain = DefaultTrustDomain
	}
	if len(o.Audiences) == 0 {
		o.Audiences = []string{DefaultTokenAudience}
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultAuthnCacheTTL
	}
	if o.CacheSize <= 0 {
		o.CacheSize = DefaultAuthnCacheSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Authenticator authenticates gRPC callers by their Kubernetes
// service-account token, as istiod's KubeJWTAuthenticator: the bearer token
// of the "authorization" metadata is checked with a TokenReview for the CA's
// audiences, and the caller is the token's service account. Positive results
// are cached briefly, keyed by the token's hash. It is safe for concurrent
// use.
type Authenticator struct {
	reviewer TokenReviewer
	opts     AuthenticatorOptions
	cache    *authnCache
}

// NewAuthenticator returns an Authenticator asking reviewer.
func NewAuthenticator(reviewer TokenReviewer, opts AuthenticatorOptions) *Authenticator {
	opts = opts.withDefaults()
	a := &Authenticator{reviewer: reviewer, opts: opts}
	if opts.CacheTTL > 0 {
		a.cache = newAuthnCache(opts.CacheSize)
	}
	return a
}

// Authenticate returns the identity of the gRPC caller of ctx. Every error
// wraps ErrUnauthenticated.
func (a *Authenticator) Authenticate(ctx context.Context) (Identity, error) {
	token, err := BearerToken(ctx)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: extracting bearer token: %w", ErrUnauthenticated, err)
	}
	return a.AuthenticateToken(ctx, token)
}

// AuthenticateToken returns the identity token belongs to. Every error wraps
// ErrUnauthenticated.
func (a *Authenticator) AuthenticateToken(ctx context.Context, token string) (Identity, error) {
	if token == "" {
		return Identity{}, fmt.Errorf("%w: empty bearer token", ErrUnauthenticated)
	}
	now := a.opts.Now()
	key := hashToken(token)
	if a.cache != nil {
		if id, ok := a.cache.get(key, now); ok {
			return id, nil
		}
	}
	id, err := a.review(ctx, token)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: validating the service-account token: %w", ErrUnauthenticated, err)
	}
	if a.cache != nil {
		expires := now.Add(a.opts.CacheTTL)
		if exp, ok := tokenExpiry(token); ok && exp.Before(expires) {
			expires = exp
		}
		if now.Before(expires) {
			a.cache.add(key, id, expires)
		}
	}
	return id, nil
}

// review asks the TokenReviewer about token and checks its answer.
func (a *Authenticator) review(ctx context.Context, token string) (Identity, error) {
	st, err := a.reviewer.Review(ctx, token, a.opts.Audiences)
	if err != nil {
		return Identity{}, err
	}
	ns, sa, err := checkReview(st, a.opts.Audiences)
	if err != nil {
		return Identity{}, err
	}
	return Identity{TrustDomain: a.opts.TrustDomain, Namespace: ns, ServiceAccount: sa}, nil
}

// checkReview applies istiod's rules to a TokenReview status
// (tokenreview.getTokenReviewResult), and also requires the API server to
// confirm one of the requested audiences, as the TokenReview API asks
// audience-aware clients to. It returns the namespace and service account.
func checkReview(st *authnv1.TokenReviewStatus, audiences []string) (string, string, error) {
	if st.Error != "" {
		return "", "", fmt.Errorf("the service account authentication returns an error: %s", st.Error)
	}
	if !st.Authenticated {
		return "", "", errors.New("the token is not authenticated")
	}
	if !slices.ContainsFunc(st.Audiences, func(s string) bool { return slices.Contains(audiences, s) }) {
		return "", "", fmt.Errorf("the token is not valid for audiences %v (TokenReview confirmed %v)", audiences, st.Audiences)
	}
	if !slices.Contains(st.User.Groups, serviceAccountsGroup) {
		return "", "", fmt.Errorf("the token of user %q is not a service account", st.User.Username)
	}
	return parseServiceAccountUser(st.User.Username)
}

// parseServiceAccountUser splits system:serviceaccount:<ns>:<sa>.
func parseServiceAccountUser(username string) (string, string, error) {
	parts := strings.Split(username, ":")
	if len(parts) != 4 || parts[0] != "system" || parts[1] != "serviceaccount" {
		return "", "", fmt.Errorf("invalid username %q in the token review result, want system:serviceaccount:<namespace>:<name>", username)
	}
	if parts[2] == "" {
		return "", "", errors.New("failed to parse the JWT; namespace required")
	}
	if parts[3] == "" {
		return "", "", errors.New("failed to parse the JWT; service account required")
	}
	return parts[2], parts[3], nil
}

// BearerToken returns the token of the first "authorization: Bearer <token>"
// value in ctx's incoming gRPC metadata, as istiod's
// security.ExtractBearerToken.
func BearerToken(ctx context.Context) (string, error) {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return "", errors.New("no metadata is attached")
	}
	values, ok := md["authorization"]
	if !ok {
		return "", errors.New("no HTTP authorization header exists")
	}
	for _, v := range values {
		if token, ok := strings.CutPrefix(v, "Bearer "); ok {
			return token, nil
		}
	}
	return "", errors.New("no bearer token exists in HTTP authorization header")
}
