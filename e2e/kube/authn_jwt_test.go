package kube

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/internal/testcerts"
)

// TestRequestAuthenticationJWT: a RequestAuthentication whose jwksUri is
// served by a local HTTPS issuer (its CA given to meshd by
// --jwks-ca-bundle), and an AuthorizationPolicy requiring a request
// principal of that issuer, on a real pilot-agent sidecar with a
// meshd-issued certificate, called by another over ISTIO_MUTUAL. meshd
// fetches the key set and hands it to Envoy inline: a token the issuer
// signed is accepted (200, the application sees it), a forged one (same
// issuer and kid, another key) and an expired one get 401 from jwt_authn,
// no token gets 403 from RBAC. A second RequestAuthentication whose
// jwksUri cannot be fetched is reported on the object (/debug/configz) and
// fails closed: tokens of its issuer get 401, the first issuer's still
// pass. The issuer's key rotation reaches Envoy through meshd's refresh.
// No Envoy restart, no rejected update.
func TestRequestAuthenticationJWT(t *testing.T) {
	const ns, sys, podIP, appPort = "jwt", "jwt-system", "10.250.64.2", 18082
	es := setUpEcho(t, ns, sys, podIP, appPort, map[string]string{"app": "echo"}, map[string]int{"client": 9})
	c, app, vip, clientNet := es.c, es.app, es.vip, es.nets["client"]

	iss := startIssuer(t)
	am := startAgentMesh(t, c, ns, sys, "--jwks-ca-bundle", iss.caFile, "--jwt-pub-key-refresh-interval", "1s")
	server := am.agent("server", "echo-0", podIP, map[string]string{"app": "echo"}, nil)
	client := am.agent("client", "client-0", "", map[string]string{"app": "client"}, clientNet)

	host := "echo." + ns + ".svc.cluster.local"
	call := func(token string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, "http://"+vip+":8080/", nil)
		require.NoError(t, err)
		req.Host = host
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := clientNet.HTTPClient().Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wait := func(token string, status int, what string) string {
		var got int
		var body string
		require.Eventually(t, func() bool { got, body = call(token); return got == status }, 30*time.Second, 100*time.Millisecond,
			"%s: want %d, last %d %q", what, status, got, body)
		return body
	}
	wait("", http.StatusOK, "no policy: the client reaches the server")
	ldsBefore := server.Counter(t, "listener_manager.lds.update_success")

	ra := &securityv1.RequestAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "bank-login", Namespace: ns}}
	ra.Spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "echo"}}
	ra.Spec.JwtRules = []*security.JWTRule{{Issuer: iss.url, JwksUri: iss.url + "/jwks", Audiences: []string{"echo"}}}
	_, err := c.istio.SecurityV1().RequestAuthentications(ns).Create(c.ctx, ra, metav1.CreateOptions{})
	require.NoError(t, err)
	ap := &securityv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "token-required", Namespace: ns}}
	ap.Spec.Selector = ra.Spec.Selector
	ap.Spec.Rules = []*security.Rule{{From: []*security.Rule_From{{Source: &security.Source{
		RequestPrincipals: []string{iss.url + "/*"}}}}}}
	_, err = c.istio.SecurityV1().AuthorizationPolicies(ns).Create(c.ctx, ap, metav1.CreateOptions{})
	require.NoError(t, err)

	good := iss.sign(t, iss.key, "teller-7", time.Hour)
	body := wait("", http.StatusForbidden, "token required: no token is denied by RBAC")
	assert.Equal(t, "RBAC: access denied", body)
	hits := app.Hits()
	wait(good, http.StatusOK, "a token signed by the issuer passes")
	assert.Greater(t, app.Hits(), hits, "the accepted request reached the application")
	assert.GreaterOrEqual(t, iss.fetches.Load(), int64(1), "meshd fetched the key set, not Envoy")

	forger, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	hits = app.Hits()
	code, body := call(iss.sign(t, forger, "teller-7", time.Hour))
	assert.Equal(t, http.StatusUnauthorized, code, "forged token (same issuer and kid, another key): %q", body)
	assert.Contains(t, body, "Jwt verification fails")
	code, body = call(iss.sign(t, iss.key, "teller-7", -10*time.Minute)) // beyond Envoy's 60 s clock skew
	assert.Equal(t, http.StatusUnauthorized, code, "expired token: %q", body)
	assert.Equal(t, hits, app.Hits(), "no refused request reached the application")

	// Rotation: the issuer signs with a new key; meshd's refresh hands it
	// to Envoy and the old key's tokens stop verifying.
	rotated := iss.rotate(t)
	wait(iss.sign(t, rotated, "teller-8", time.Hour), http.StatusOK, "a token of the rotated key passes after meshd's refresh")
	code, _ = call(good)
	assert.Equal(t, http.StatusUnauthorized, code, "the retired key's token no longer verifies")

	// An issuer whose key set cannot be fetched fails closed and is reported.
	closed := "https://127.0.0.1:" + strconv.Itoa(harness.FreePort(t))
	down := &securityv1.RequestAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "partner", Namespace: ns}}
	down.Spec.Selector = ra.Spec.Selector
	down.Spec.JwtRules = []*security.JWTRule{{Issuer: closed, JwksUri: closed + "/jwks"}}
	_, err = c.istio.SecurityV1().RequestAuthentications(ns).Create(c.ctx, down, metav1.CreateOptions{})
	require.NoError(t, err)
	var reported model.ObjectError
	require.Eventually(t, func() bool {
		for _, e := range configzErrors(t, am.meshd) {
			if e.Kind == model.KindRequestAuthentication && e.Name == "partner" {
				reported = e
				return true
			}
		}
		return false
	}, 20*time.Second, 100*time.Millisecond, "/debug/configz must report the unreachable JWKS on the RequestAuthentication")
	assert.Equal(t, "spec.jwtRules[0].jwksUri", reported.Field)
	assert.Contains(t, reported.Message, "fail closed")
	t.Logf("reported: %s", reported.Message)
	partnerToken := func() string {
		tok, err := jwt.Signed(mustSigner(t, iss.current(), "k1")).Claims(jwt.Claims{Issuer: closed, Subject: "p",
			Expiry: jwt.NewNumericDate(time.Now().Add(time.Hour))}).Serialize()
		require.NoError(t, err)
		return tok
	}()
	wait(partnerToken, http.StatusUnauthorized, "a token of the unreachable issuer is refused (fail closed)")
	code, _ = call(iss.sign(t, rotated, "teller-8", time.Hour))
	assert.Equal(t, http.StatusOK, code, "the reachable issuer's tokens still pass")

	for _, name := range []string{"bank-login", "partner"} {
		require.NoError(t, c.istio.SecurityV1().RequestAuthentications(ns).Delete(c.ctx, name, metav1.DeleteOptions{}))
	}
	require.NoError(t, c.istio.SecurityV1().AuthorizationPolicies(ns).Delete(c.ctx, "token-required", metav1.DeleteOptions{}))
	wait("", http.StatusOK, "policies deleted: no token needed")

	assert.False(t, server.Exited(), "the server's Envoy kept running")
	assert.GreaterOrEqual(t, server.Counter(t, "listener_manager.lds.update_success"), ldsBefore+4,
		"each change arrived as a listener update")
	for _, a := range []*harness.PilotAgent{server, client} {
		a.RequireNoRejects(t)
	}
}

// issuer is a JWT issuer serving its key set over HTTPS at url+"/jwks".
type issuer struct {
	url, caFile string
	key         *rsa.PrivateKey
	keys        atomic.Pointer[rsa.PrivateKey]
	kid         atomic.Int64
	fetches     atomic.Int64
}

// startIssuer serves an issuer's JWKS on a free loopback port with a
// certificate of a test CA, written to caFile.
func startIssuer(t *testing.T) *issuer {
	ca := testcerts.NewCA("jwt-issuer-ca", testcerts.Options{})
	leaf := testcerts.NewLeaf("127.0.0.1", ca, testcerts.Options{DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}})
	pair, err := tls.X509KeyPair(leaf.CertPEM, leaf.KeyPEM)
	require.NoError(t, err)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	iss := &issuer{key: key, caFile: filepath.Join(t.TempDir(), "extra.pem")}
	iss.keys.Store(key)
	iss.kid.Store(1)
	require.NoError(t, os.WriteFile(iss.caFile, ca.CertPEM, 0o600))
	lis, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12})
	require.NoError(t, err)
	iss.url = "https://" + lis.Addr().String()
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/jwks" {
			http.NotFound(w, r)
			return
		}
		iss.fetches.Add(1)
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &iss.current().PublicKey, KeyID: iss.kidName(),
			Algorithm: string(jose.RS256), Use: "sig"}}}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})}
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { _ = srv.Close() })
	return iss
}

func (iss *issuer) current() *rsa.PrivateKey { return iss.keys.Load() }
func (iss *issuer) kidName() string          { return "k" + strconv.FormatInt(iss.kid.Load(), 10) }

// rotate makes the issuer sign with, and publish, a new key.
func (iss *issuer) rotate(t *testing.T) *rsa.PrivateKey {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	iss.keys.Store(key)
	iss.kid.Store(2)
	return key
}

// sign returns a token of the issuer for sub (audience echo) valid for
// ttl (negative: expired), signed by key under the issuer's current kid.
func (iss *issuer) sign(t *testing.T, key *rsa.PrivateKey, sub string, ttl time.Duration) string {
	now := time.Now()
	claims := jwt.Claims{Issuer: iss.url, Subject: sub, Audience: jwt.Audience{"echo"},
		IssuedAt: jwt.NewNumericDate(now.Add(-2 * time.Minute)), Expiry: jwt.NewNumericDate(now.Add(ttl))}
	if ttl < 0 {
		claims.IssuedAt = jwt.NewNumericDate(now.Add(ttl - time.Hour))
	}
	tok, err := jwt.Signed(mustSigner(t, key, iss.kidName())).Claims(claims).Serialize()
	require.NoError(t, err)
	require.True(t, strings.Count(tok, ".") == 2)
	return tok
}

// mustSigner is an RS256 signer with key id kid.
func mustSigner(t *testing.T, key *rsa.PrivateKey, kid string) jose.Signer {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	require.NoError(t, err)
	return s
}
