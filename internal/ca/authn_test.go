package ca

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"
	authnv1 "k8s.io/api/authentication/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

// fakeClock is a settable clock for cache expiry tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// makeJWT returns an unsigned JWT-shaped token with claims sub and exp (no
// exp when zero); the fake reviewer does not verify signatures.
func makeJWT(sub string, exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	payload := fmt.Sprintf(`{"sub":%q}`, sub)
	if !exp.IsZero() {
		payload = fmt.Sprintf(`{"sub":%q,"exp":%d}`, sub, exp.Unix())
	}
	return enc([]byte(`{"alg":"RS256","typ":"JWT"}`)) + "." + enc([]byte(payload)) + ".c2ln"
}

// bearerCtx is an incoming gRPC context carrying authorization values.
func bearerCtx(values ...string) context.Context {
	md := metadata.MD{}
	for _, v := range values {
		md.Append("authorization", v)
	}
	return metadata.NewIncomingContext(context.Background(), md)
}

// errReviewer fails every review, as an unreachable API server.
type errReviewer struct{}

func (errReviewer) Review(context.Context, string, []string) (*authnv1.TokenReviewStatus, error) {
	return nil, errors.New("connection refused")
}

// statusReviewer answers every review with st.
type statusReviewer struct{ st authnv1.TokenReviewStatus }

func (r statusReviewer) Review(context.Context, string, []string) (*authnv1.TokenReviewStatus, error) {
	st := r.st
	return &st, nil
}

func TestAuthenticateAcceptsServiceAccountToken(t *testing.T) {
	r := NewFakeTokenReviewer()
	r.AddServiceAccount("tok", "foo", "bar", DefaultTokenAudience)
	a := NewAuthenticator(r, AuthenticatorOptions{TrustDomain: "bank.example"})
	id, err := a.Authenticate(bearerCtx("Basic xyz", "Bearer tok"))
	require.NoError(t, err)
	assert.Equal(t, Identity{TrustDomain: "bank.example", Namespace: "foo", ServiceAccount: "bar"}, id)
	assert.Equal(t, "spiffe://bank.example/ns/foo/sa/bar", id.SPIFFEID())
}

func TestAuthenticateRefuses(t *testing.T) {
	r := NewFakeTokenReviewer()
	r.AddServiceAccount("foreign", "foo", "bar", "vault")
	r.Add("user", "alice", []string{"system:authenticated"}, DefaultTokenAudience)
	r.Add("oddname", "system:serviceaccount:foo", []string{serviceAccountsGroup}, DefaultTokenAudience)
	r.Add("emptysa", "system:serviceaccount:foo:", []string{serviceAccountsGroup}, DefaultTokenAudience)
	tests := []struct {
		name     string
		ctx      context.Context
		reviewer TokenReviewer
		wantErr  string
	}{
		{"no metadata", context.Background(), r, "no metadata is attached"},
		{"no authorization", metadata.NewIncomingContext(context.Background(), metadata.MD{"x": {"y"}}), r, "no HTTP authorization header exists"},
		{"not bearer", bearerCtx("Basic abc"), r, "no bearer token exists"},
		{"empty bearer", bearerCtx("Bearer "), r, "empty bearer token"},
		{"unknown token", bearerCtx("Bearer nope"), r, "returns an error: invalid bearer token"},
		{"foreign audience", bearerCtx("Bearer foreign"), r, "token audiences are invalid"},
		{"not a service account", bearerCtx("Bearer user"), r, `user "alice" is not a service account`},
		{"malformed username", bearerCtx("Bearer oddname"), r, "invalid username"},
		{"empty service account", bearerCtx("Bearer emptysa"), r, "service account required"},
		{"review fails", bearerCtx("Bearer tok"), errReviewer{}, "connection refused"},
		{"not authenticated", bearerCtx("Bearer tok"), statusReviewer{}, "the token is not authenticated"},
		{"audience not confirmed", bearerCtx("Bearer tok"), statusReviewer{authnv1.TokenReviewStatus{
			Authenticated: true,
			User:          authnv1.UserInfo{Username: "system:serviceaccount:foo:bar", Groups: []string{serviceAccountsGroup}},
		}}, "not valid for audiences [istio-ca]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewAuthenticator(tt.reviewer, AuthenticatorOptions{}).Authenticate(tt.ctx)
			require.Error(t, err)
			assert.ErrorIs(t, err, ErrUnauthenticated)
			assert.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestAuthenticateCachesPositiveResults(t *testing.T) {
	clock := newFakeClock()
	r := NewFakeTokenReviewer()
	r.AddServiceAccount("tok", "foo", "bar", DefaultTokenAudience)
	a := NewAuthenticator(r, AuthenticatorOptions{CacheTTL: time.Minute, Now: clock.Now})
	for range 3 {
		_, err := a.Authenticate(bearerCtx("Bearer tok"))
		require.NoError(t, err)
	}
	assert.Equal(t, 1, r.Reviews(), "cache hits avoid TokenReviews")

	clock.Advance(time.Minute)
	r.Remove("tok")
	_, err := a.Authenticate(bearerCtx("Bearer tok"))
	require.ErrorIs(t, err, ErrUnauthenticated, "an expired entry triggers a new review, which now fails")
	assert.Equal(t, 2, r.Reviews())
}

func TestAuthenticateCacheExpiresWithToken(t *testing.T) {
	clock := newFakeClock()
	tok := makeJWT("system:serviceaccount:foo:bar", clock.Now().Add(10*time.Second))
	r := NewFakeTokenReviewer()
	r.AddServiceAccount(tok, "foo", "bar", DefaultTokenAudience)
	a := NewAuthenticator(r, AuthenticatorOptions{CacheTTL: time.Hour, Now: clock.Now})
	_, err := a.AuthenticateToken(context.Background(), tok)
	require.NoError(t, err)
	clock.Advance(9 * time.Second)
	_, err = a.AuthenticateToken(context.Background(), tok)
	require.NoError(t, err)
	assert.Equal(t, 1, r.Reviews())
	clock.Advance(time.Second)
	_, err = a.AuthenticateToken(context.Background(), tok)
	require.NoError(t, err)
	assert.Equal(t, 2, r.Reviews(), "the entry expires with the token, before the cache TTL")
}

func TestAuthenticateDoesNotCacheFailures(t *testing.T) {
	r := NewFakeTokenReviewer()
	a := NewAuthenticator(r, AuthenticatorOptions{})
	_, err := a.AuthenticateToken(context.Background(), "tok")
	require.Error(t, err)
	r.AddServiceAccount("tok", "foo", "bar", DefaultTokenAudience)
	_, err = a.AuthenticateToken(context.Background(), "tok")
	require.NoError(t, err)
	assert.Equal(t, 2, r.Reviews())
}

func TestAuthenticateCacheDisabled(t *testing.T) {
	r := NewFakeTokenReviewer()
	r.AddServiceAccount("tok", "foo", "bar", DefaultTokenAudience)
	a := NewAuthenticator(r, AuthenticatorOptions{CacheTTL: -1})
	for range 2 {
		_, err := a.AuthenticateToken(context.Background(), "tok")
		require.NoError(t, err)
	}
	assert.Equal(t, 2, r.Reviews())
}

func TestAuthenticateCacheIsBounded(t *testing.T) {
	r := NewFakeTokenReviewer()
	for _, tok := range []string{"a", "b", "c"} {
		r.AddServiceAccount(tok, "foo", tok, DefaultTokenAudience)
	}
	a := NewAuthenticator(r, AuthenticatorOptions{CacheSize: 2})
	for _, tok := range []string{"a", "b", "a", "c"} {
		_, err := a.AuthenticateToken(context.Background(), tok)
		require.NoError(t, err)
	}
	assert.Equal(t, 2, a.cache.len())
	assert.Equal(t, 3, r.Reviews())
	_, err := a.AuthenticateToken(context.Background(), "a")
	require.NoError(t, err)
	assert.Equal(t, 3, r.Reviews(), "a was used recently and kept")
	_, err = a.AuthenticateToken(context.Background(), "b")
	require.NoError(t, err)
	assert.Equal(t, 4, r.Reviews(), "b was the least recently used and evicted")
}

func TestTokenExpiry(t *testing.T) {
	exp := time.Unix(1_900_000_000, 0)
	got, ok := tokenExpiry(makeJWT("x", exp))
	require.True(t, ok)
	assert.True(t, got.Equal(exp))
	for _, tok := range []string{"opaque", makeJWT("x", time.Time{}), "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("[]")) + ".c"} {
		_, ok := tokenExpiry(tok)
		assert.False(t, ok, tok)
	}
}

func TestKubeTokenReviewer(t *testing.T) {
	client := fake.NewClientset()
	var got *authnv1.TokenReview
	client.PrependReactor("create", "tokenreviews", func(action k8stesting.Action) (bool, runtime.Object, error) {
		got = action.(k8stesting.CreateAction).GetObject().(*authnv1.TokenReview)
		res := got.DeepCopy()
		res.Status = authnv1.TokenReviewStatus{
			Authenticated: true,
			User:          authnv1.UserInfo{Username: "system:serviceaccount:foo:bar", Groups: []string{serviceAccountsGroup}},
			Audiences:     got.Spec.Audiences,
		}
		return true, res, nil
	})
	a := NewAuthenticator(KubeTokenReviewer{Client: client.AuthenticationV1()}, AuthenticatorOptions{})
	id, err := a.Authenticate(bearerCtx("Bearer tok"))
	require.NoError(t, err)
	assert.Equal(t, fooID, id)
	require.NotNil(t, got)
	assert.Equal(t, "tok", got.Spec.Token)
	assert.Equal(t, []string{"istio-ca"}, got.Spec.Audiences)

	client.PrependReactor("create", "tokenreviews", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("forbidden")
	})
	_, err = KubeTokenReviewer{Client: client.AuthenticationV1()}.Review(context.Background(), "t", nil)
	assert.ErrorContains(t, err, "creating TokenReview: forbidden")
}
