package jwks

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	security "istio.io/api/security/v1beta1"

	"github.com/meshd/meshd/internal/model"
)

const keySet = `{"keys":[{"kty":"RSA","alg":"RS256","kid":"a","e":"AQAB","n":"wg0IAfIXv2DQBeZ8AufcKb5OClyve5abnLgqwOtsR1cXNyfIY93DCiESGfRLNoxG6huvdJ7_jlcRJt3MEyIJaEwl70172TT0dRqhn52Hh7eSpNuOB1vpVKBCCcPSTeKdYRgsGvCKmiPafevn3UhxH2JEUyo_4GVIXWhcPig1uhNP5-lThax4eE0EXCAuQiW8ntRxjk2yJgIL6Su99lft631t-4ddJ6vbsFB6NtCehs3qaU24019cqtpr0-dWlFOkzd6tBuj_Eeg3W_O-HES4kisL1sObXalx6Xz7GuCVDxsi0ISW1eSAMEkg84jQ-ZSSYVgWUO2HcdHM-OmMcyeBEw"}]}`

// raChange is a RequestAuthentication of ns/name with rules.
func raChange(name string, rules ...*security.JWTRule) model.Change {
	return model.Change{Kind: model.KindRequestAuthentication, Namespace: "ns", Name: name, Object: &model.Config{
		Kind: model.KindRequestAuthentication, Namespace: "ns", Name: name, Spec: &security.RequestAuthentication{JwtRules: rules}}}
}

// run starts a Resolver on store until the test ends.
func run(t *testing.T, store *model.Store, refresh time.Duration) *Metrics {
	t.Helper()
	m := NewMetrics(prometheus.NewRegistry())
	r := &Resolver{Store: store, Client: http.DefaultClient, Refresh: refresh, Metrics: m,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return m
}

// jwksOf waits for the Store's JWKS of jwksUri uri (or, with an
// "openid:" prefix, of an issuer's discovery) to satisfy ok.
func jwksOf(t *testing.T, store *model.Store, uri string, ok func(*model.JWKS) bool) *model.JWKS {
	t.Helper()
	name := model.JWKSName(uri, "")
	if strings.HasPrefix(uri, "openid:") {
		name = uri
	}
	var got *model.JWKS
	require.Eventually(t, func() bool {
		j, found := store.Current().JWKS(name)
		got = j
		return found && ok(j)
	}, 5*time.Second, 10*time.Millisecond, "JWKS %s: last %v", uri, got)
	return got
}

// TestResolverFetchesRefreshesAndDrops: a jwksUri is fetched into the
// Store, refreshed (a new key set replaces it), kept with its error when a
// refresh fails, and dropped when no RequestAuthentication names it; an
// inline jwks is never fetched.
func TestResolverFetchesRefreshesAndDrops(t *testing.T) {
	var body atomic.Value
	body.Store(keySet)
	var status atomic.Int32
	status.Store(http.StatusOK)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(int(status.Load()))
		_, _ = io.WriteString(w, body.Load().(string))
	}))
	defer srv.Close()
	store := model.NewStore()
	m := run(t, store, 50*time.Millisecond)
	uri := srv.URL + "/jwks"
	store.Apply([]model.Change{raChange("a", &security.JWTRule{Issuer: "i", JwksUri: uri},
		&security.JWTRule{Issuer: "inline", Jwks: keySet})})

	j := jwksOf(t, store, uri, func(j *model.JWKS) bool { return j.Keys == keySet })
	assert.Empty(t, j.Err)
	_, inline := store.Current().JWKS(model.JWKSName("", "inline"))
	assert.False(t, inline, "inline jwks are not fetched")

	rotated := `{"keys":[{"kty":"RSA","alg":"RS256","use":"sig","kid":"partner-1","e":"AQAB","n":"x9sCHNOjon4F3s8rFwBu1R5bkg5SX3-Q0i04U5h_MJUmiPVR2hM4IPcdTahZI-Yf5_FaeN8V1nz8pPFCj0fBzyoCymz8EwMTa2iiVuGFVHV_8qe8lbVzfFos1mJz4Lc1I5G4FPvASPprKGU9zo-bcXq_ki7IXT50GNbksFwbL7cd7kTPF9bW99jCElyEAfsXli9_pt9lUnFi4fNXUO_gIJdcUvdXqroZmCqhGUfvRVhD5QDNDnMMOb6DherVasSoidvlP6sBXJz2nyRCBcak1MRUWOIw7i0-ByKVTEHQfGuxNo0W6cZyY2fvstDZbOKAhG0aILtp21iVHFMqzu685Q"}]}`
	body.Store(rotated)
	jwksOf(t, store, uri, func(j *model.JWKS) bool { return j.Keys == rotated })

	status.Store(http.StatusServiceUnavailable)
	j = jwksOf(t, store, uri, func(j *model.JWKS) bool { return j.Err != "" })
	assert.Equal(t, rotated, j.Keys, "a failed refresh keeps the last good key set")
	assert.Contains(t, j.Err, "status 503")
	assert.Greater(t, testutil.ToFloat64(m.Fail), 0.0)
	assert.Greater(t, testutil.ToFloat64(m.Success), 1.0)

	store.Apply([]model.Change{{Kind: model.KindRequestAuthentication, Namespace: "ns", Name: "a"}})
	require.Eventually(t, func() bool { _, ok := store.Current().JWKS(model.JWKSName(uri, "")); return !ok }, 5*time.Second, 10*time.Millisecond,
		"a key set no policy names is dropped")
}

// TestResolverReportsBadKeySetsAndDiscovery: a body that is not a key set
// is an error (no keys), and a rule with neither jwks nor jwksUri finds
// its key set through the issuer's OpenID discovery document.
func TestResolverReportsBadKeySetsAndDiscovery(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("/bad", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, `{"keys":[]}`) })
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"issuer":"`+srv.URL+`","jwks_uri":"`+srv.URL+`/keys"}`)
	})
	mux.HandleFunc("/keys", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, keySet) })
	store := model.NewStore()
	run(t, store, time.Hour)
	store.Apply([]model.Change{raChange("a", &security.JWTRule{Issuer: "x", JwksUri: srv.URL + "/bad"},
		&security.JWTRule{Issuer: srv.URL})})
	bad := jwksOf(t, store, srv.URL+"/bad", func(j *model.JWKS) bool { return j.Err != "" })
	assert.Empty(t, bad.Keys)
	assert.Contains(t, bad.Err, "no keys")
	jwksOf(t, store, "openid:"+srv.URL, func(j *model.JWKS) bool { return j.Keys == keySet })
}

// TestResolverIssuerDoesNotShadowJWKSURI: a rule (another namespace's)
// whose issuer is the text of a jwksUri does not replace that jwksUri's
// key set: OpenID discovery and jwksUri sets are kept apart.
func TestResolverIssuerDoesNotShadowJWKSURI(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/keys" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, keySet)
	}))
	defer srv.Close()
	store := model.NewStore()
	run(t, store, time.Hour)
	uri := srv.URL + "/keys"
	store.Apply([]model.Change{raChange("a", &security.JWTRule{Issuer: "https://a.example", JwksUri: uri}),
		{Kind: model.KindRequestAuthentication, Namespace: "other", Name: "b", Object: &model.Config{
			Kind: model.KindRequestAuthentication, Namespace: "other", Name: "b",
			Spec: &security.RequestAuthentication{JwtRules: []*security.JWTRule{{Issuer: uri}}}}}})
	jwksOf(t, store, uri, func(j *model.JWKS) bool { return j.Keys == keySet })
	bad := jwksOf(t, store, "openid:"+uri, func(j *model.JWKS) bool { return j.Err != "" })
	assert.Contains(t, bad.Err, "OpenID discovery")
	j, _ := store.Current().JWKS(model.JWKSName(uri, ""))
	assert.Equal(t, keySet, j.Keys, "the jwksUri's keys are intact")
}

// TestResolverSlowSourceDoesNotBlockOthers: a key set whose server never
// answers (capped timeout) does not delay another's fetch, and
// WaitInitial returns once every named set was tried.
func TestResolverSlowSourceDoesNotBlockOthers(t *testing.T) {
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, keySet) }))
	defer fast.Close()
	store := model.NewStore()
	r := &Resolver{Store: store, Client: http.DefaultClient, Refresh: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store.Apply([]model.Change{raChange("a",
		&security.JWTRule{Issuer: "slow", JwksUri: slow.URL + "/keys", Timeout: durationpb.New(time.Hour)},
		&security.JWTRule{Issuer: "fast", JwksUri: fast.URL + "/keys"})})
	go r.Run(ctx)
	start := time.Now()
	jwksOf(t, store, fast.URL+"/keys", func(j *model.JWKS) bool { return j.Keys == keySet })
	assert.Less(t, time.Since(start), 3*time.Second, "the fast set is not queued behind the slow one")
	srcs := Sources(store.Current())
	assert.Equal(t, MaxTimeout, srcs[model.JWKSName(slow.URL+"/keys", "")].timeout, "a rule's timeout is capped")

	waited := time.Now()
	r.WaitInitial(ctx, 300*time.Millisecond)
	assert.GreaterOrEqual(t, time.Since(waited), 250*time.Millisecond, "the slow set is still being tried: WaitInitial waits until its bound")
}

// TestNewClientCABundle: a bundle adds its CA; a missing file adds none;
// a file without PEM is an error.
func TestNewClientCABundle(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, keySet) }))
	defer srv.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "extra.pem")
	require.NoError(t, os.WriteFile(ca, pemOf(srv.Certificate().Raw), 0o600))

	c, err := NewClient(ca, false, os.ReadFile)
	require.NoError(t, err)
	resp, err := c.Get(srv.URL)
	require.NoError(t, err, "the bundle's CA verifies the server")
	resp.Body.Close()

	c, err = NewClient(filepath.Join(dir, "missing.pem"), false, os.ReadFile)
	require.NoError(t, err)
	_, err = c.Get(srv.URL)
	require.Error(t, err, "without the bundle the server is not trusted")

	junk := filepath.Join(dir, "junk.pem")
	require.NoError(t, os.WriteFile(junk, []byte("not pem"), 0o600))
	_, err = NewClient(junk, false, os.ReadFile)
	require.ErrorContains(t, err, "no PEM certificate")
}

// TestWaitInitial: WaitInitial returns as soon as every named key set has
// been fetched, with the keys in the Store (meshd's first push has them).
func TestWaitInitial(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, keySet) }))
	defer srv.Close()
	store := model.NewStore()
	store.Apply([]model.Change{raChange("a", &security.JWTRule{Issuer: "i", JwksUri: srv.URL + "/k"})})
	r := &Resolver{Store: store, Client: http.DefaultClient, Refresh: time.Hour, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	start := time.Now()
	r.WaitInitial(ctx, 10*time.Second)
	assert.Less(t, time.Since(start), 5*time.Second)
	j, ok := store.Current().JWKS(model.JWKSName(srv.URL+"/k", ""))
	require.True(t, ok, "the key set is in the Store when WaitInitial returns")
	assert.Equal(t, keySet, j.Keys)
}
