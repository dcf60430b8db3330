package ca

import (
	"bufio"
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"os"
	"strings"
)

// StaticAuthenticator authenticates callers from a fixed table of tokens, for
// the file provider (which has no API server to ask) and tests. Each token
// maps to one service account.
type StaticAuthenticator struct {
	trustDomain string
	tokens      []staticToken
}

type staticToken struct {
	token string
	id    Identity
}

// LoadStaticTokens reads a file of "TOKEN NAMESPACE SERVICEACCOUNT" lines
// (blank lines and lines starting with # are skipped).
func LoadStaticTokens(path, trustDomain string) (*StaticAuthenticator, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("static tokens: %w", err)
	}
	defer f.Close()
	a, err := ParseStaticTokens(f, trustDomain)
	if err != nil {
		return nil, fmt.Errorf("static tokens %s: %w", path, err)
	}
	return a, nil
}

// ParseStaticTokens reads the "TOKEN NAMESPACE SERVICEACCOUNT" lines of r.
func ParseStaticTokens(r io.Reader, trustDomain string) (*StaticAuthenticator, error) {
	if trustDomain == "" {
		trustDomain = DefaultTrustDomain
	}
	a := &StaticAuthenticator{trustDomain: trustDomain}
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want TOKEN NAMESPACE SERVICEACCOUNT, got %d fields", n, len(f))
		}
		id := Identity{TrustDomain: trustDomain, Namespace: f[1], ServiceAccount: f[2]}
		if err := id.validate(); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if seen[f[0]] {
			return nil, fmt.Errorf("line %d: token repeated", n)
		}
		seen[f[0]] = true
		a.tokens = append(a.tokens, staticToken{token: f[0], id: id})
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(a.tokens) == 0 {
		return nil, fmt.Errorf("no tokens")
	}
	return a, nil
}

// Authenticate returns the identity of the bearer token of ctx's gRPC
// metadata. Every error wraps ErrUnauthenticated.
func (a *StaticAuthenticator) Authenticate(ctx context.Context) (Identity, error) {
	token, err := BearerToken(ctx)
	if err != nil {
		return Identity{}, fmt.Errorf("%w: extracting bearer token: %w", ErrUnauthenticated, err)
	}
	return a.AuthenticateToken(ctx, token)
}

// AuthenticateToken returns the identity token belongs to. Every error wraps
// ErrUnauthenticated. Tokens are compared in constant time.
func (a *StaticAuthenticator) AuthenticateToken(_ context.Context, token string) (Identity, error) {
	for _, t := range a.tokens {
		if subtle.ConstantTimeCompare([]byte(t.token), []byte(token)) == 1 {
			return t.id, nil
		}
	}
	return Identity{}, fmt.Errorf("%w: unknown token", ErrUnauthenticated)
}

// ParseStaticTokensString is ParseStaticTokens of a string, in the default
// trust domain (for tests).
func ParseStaticTokensString(lines string) (*StaticAuthenticator, error) {
	return ParseStaticTokens(strings.NewReader(lines), "")
}
