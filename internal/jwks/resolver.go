package jwks

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	security "istio.io/api/security/v1beta1"

	"github.com/meshd/meshd/internal/model"
)

// Defaults, as istiod's.
const (
	// DefaultRefresh is PILOT_JWT_PUB_KEY_REFRESH_INTERVAL's default.
	DefaultRefresh = 20 * time.Minute
	// retryOnFailure bounds how soon a failed fetch is tried again
	// (istiod's JwtPubKeyRefreshIntervalOnFailure).
	retryOnFailure = time.Minute
	// defaultTimeout is a fetch's timeout when the rule sets none.
	defaultTimeout = 5 * time.Second
	// maxBody bounds a key set or discovery document.
	maxBody = 1 << 20
	// openIDSuffix is OpenID Connect discovery's path under the issuer.
	openIDSuffix = "/.well-known/openid-configuration"
)

// Resolver keeps the Store's JWKS objects in step with the jwksUris its
// RequestAuthentications name.
type Resolver struct {
	// Store is read for RequestAuthentications and written with JWKS.
	Store *model.Store
	// Client fetches the key sets (NewClient).
	Client *http.Client
	// Refresh is how often a key set is fetched again (DefaultRefresh).
	Refresh time.Duration
	// Logger logs fetch failures and recoveries.
	Logger *slog.Logger
	// Metrics counts fetches (NewMetrics); nil counts nothing.
	Metrics *Metrics
	// now is time.Now, replaced in tests.
	now func() time.Time
}

// Metrics are istiod's JWKS resolver counters.
type Metrics struct {
	// Success is pilot_jwks_resolver_network_fetch_success_total.
	Success prometheus.Counter
	// Fail is pilot_jwks_resolver_network_fetch_fail_total.
	Fail prometheus.Counter
}

// NewMetrics creates the counters and registers them on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Success: prometheus.NewCounter(prometheus.CounterOpts{Name: "pilot_jwks_resolver_network_fetch_success_total",
			Help: "Total number of successfully network fetch by pilot jwks resolver"}),
		Fail: prometheus.NewCounter(prometheus.CounterOpts{Name: "pilot_jwks_resolver_network_fetch_fail_total",
			Help: "Total number of failed network fetch by pilot jwks resolver"}),
	}
	reg.MustRegister(m.Success, m.Fail)
	return m
}

// NewClient is the HTTP client of the fetches: the system roots plus the
// PEM bundle at caFile (istiod's /cacerts/extra.pem; "" or a missing file
// adds nothing), TLS 1.2 at least, certificate checks skipped only when
// insecure (JWKS_RESOLVER_INSECURE_SKIP_VERIFY).
func NewClient(caFile string, insecure bool, readFile func(string) ([]byte, error)) (*http.Client, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile != "" {
		pem, err := readFile(caFile)
		switch {
		case err == nil:
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("JWKS CA bundle %s: no PEM certificate in it", caFile)
			}
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("JWKS CA bundle: %w", err)
		}
	}
	tr := &http.Transport{
		Proxy:             http.ProxyFromEnvironment,
		DisableKeepAlives: true,
		// #nosec G402 -- only when the operator sets JWKS_RESOLVER_INSECURE_SKIP_VERIFY, as istiod.
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure},
	}
	return &http.Client{Transport: tr}, nil
}

// source is one key set to fetch: its Store name (the jwksUri, or the
// issuer for OpenID discovery) and the timeout of its fetches.
type source struct {
	name      string
	discovery bool
	timeout   time.Duration
}

// Sources lists the key sets snap's RequestAuthentications need meshd to
// fetch, by name: a rule's jwksUri, or its issuer when it has neither
// jwks nor jwksUri. Rules with inline jwks need nothing.
func Sources(snap *model.Snapshot) map[string]source {
	out := map[string]source{}
	for _, cfg := range snap.Configs(model.KindRequestAuthentication) {
		for _, r := range cfg.Spec.(*security.RequestAuthentication).GetJwtRules() {
			if r.GetJwks() != "" {
				continue
			}
			s := source{name: r.GetJwksUri(), timeout: defaultTimeout}
			if s.name == "" {
				s = source{name: r.GetIssuer(), discovery: true, timeout: defaultTimeout}
			}
			if t := r.GetTimeout(); t != nil && t.AsDuration() > 0 {
				s.timeout = t.AsDuration()
			}
			if prev, ok := out[s.name]; ok && prev.timeout > s.timeout {
				s.timeout = prev.timeout
			}
			out[s.name] = s
		}
	}
	return out
}

// state is what the Resolver knows of one key set.
type state struct {
	src  source
	cur  *model.JWKS
	next time.Time
}

// Run keeps the Store's key sets up to date until ctx is done.
func (r *Resolver) Run(ctx context.Context) {
	if r.now == nil {
		r.now = time.Now
	}
	if r.Refresh <= 0 {
		r.Refresh = DefaultRefresh
	}
	kick := make(chan struct{}, 1)
	r.Store.Subscribe(func(ev model.Event) {
		if ev.Kinds()[model.KindRequestAuthentication] {
			select {
			case kick <- struct{}{}:
			default:
			}
		}
	})
	states := map[string]*state{}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		r.sync(ctx, states)
		wait := r.Refresh
		for _, st := range states {
			if d := st.next.Sub(r.now()); d < wait {
				wait = max(d, 0)
			}
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

// sync drops key sets no longer named, and fetches those new or due.
func (r *Resolver) sync(ctx context.Context, states map[string]*state) {
	want := Sources(r.Store.Current())
	var changes []model.Change
	for name := range states {
		if _, ok := want[name]; !ok {
			delete(states, name)
			changes = append(changes, model.Change{Kind: model.KindJWKS, Name: name})
		}
	}
	names := make([]string, 0, len(want))
	for name := range want {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		st := states[name]
		if st == nil {
			st = &state{}
			states[name] = st
		}
		st.src = want[name]
		if st.cur != nil && r.now().Before(st.next) {
			continue
		}
		if next := r.fetchOne(ctx, st); next != st.cur {
			st.cur = next
			changes = append(changes, model.Change{Kind: model.KindJWKS, Name: name, Object: next})
		}
	}
	if len(changes) > 0 {
		r.Store.Apply(changes)
	}
}

// fetchOne fetches st's key set and returns its new value (st.cur itself
// when nothing changed), setting when to fetch it again.
func (r *Resolver) fetchOne(ctx context.Context, st *state) *model.JWKS {
	keys, err := r.fetch(ctx, st.src)
	now := r.now()
	if err != nil {
		r.count(false)
		st.next = now.Add(min(r.Refresh, retryOnFailure))
		msg := err.Error()
		if st.cur != nil && st.cur.Err == msg {
			return st.cur
		}
		r.Logger.Warn("JWKS fetch failed; tokens of this issuer are rejected until it succeeds unless an older key set is held",
			"jwks", st.src.name, "error", msg)
		j := &model.JWKS{URI: st.src.name, Err: msg}
		if st.cur != nil && st.cur.Keys != "" {
			j.Keys, j.Fetched = st.cur.Keys, st.cur.Fetched
		}
		return j
	}
	r.count(true)
	st.next = now.Add(r.Refresh)
	if st.cur != nil && st.cur.Err == "" && st.cur.Keys == keys {
		return st.cur
	}
	if st.cur != nil && st.cur.Err != "" {
		r.Logger.Info("JWKS fetched again", "jwks", st.src.name)
	}
	return &model.JWKS{URI: st.src.name, Keys: keys, Fetched: now}
}

func (r *Resolver) count(ok bool) {
	switch {
	case r.Metrics == nil:
	case ok:
		r.Metrics.Success.Inc()
	default:
		r.Metrics.Fail.Inc()
	}
}

// fetch returns the key set of src, checked to parse.
func (r *Resolver) fetch(ctx context.Context, src source) (string, error) {
	uri := src.name
	if src.discovery {
		doc, err := r.get(ctx, strings.TrimSuffix(src.name, "/")+openIDSuffix, src.timeout)
		if err != nil {
			return "", fmt.Errorf("OpenID discovery of issuer %s: %w", src.name, err)
		}
		var d struct {
			JwksURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(doc, &d); err != nil || d.JwksURI == "" {
			return "", fmt.Errorf("OpenID discovery of issuer %s: no jwks_uri in the document", src.name)
		}
		uri = d.JwksURI
	}
	body, err := r.get(ctx, uri, src.timeout)
	if err != nil {
		return "", err
	}
	if err := model.ParseJWKS(string(body)); err != nil {
		return "", fmt.Errorf("GET %s: %w", uri, err)
	}
	return string(body), nil
}

// get GETs uri within timeout; a status other than 200 is an error.
func (r *Resolver) get(ctx context.Context, uri string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, err
	}
	resp, err := r.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", uri, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", uri, resp.StatusCode)
	}
	if len(body) > maxBody {
		return nil, fmt.Errorf("GET %s: more than %d bytes", uri, maxBody)
	}
	return body, nil
}
