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
	"strings"
	"sync"
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

	once   sync.Once
	kick   chan struct{}
	slots  chan struct{} // fetches in flight
	tried  chan struct{} // a fetch finished (WaitInitial)
	mu     sync.Mutex
	states map[string]*state
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

// source is one key set to fetch: its Store name ("uri:<jwksUri>", or
// "openid:<issuer>" for OpenID discovery: two namespaces of names, so a
// rule naming an issuer never stands for another rule's jwksUri), the URL
// and the timeout of its fetches.
type source struct {
	name, url string
	discovery bool
	timeout   time.Duration
}

const (
	// MaxTimeout bounds a rule's timeout for meshd's fetch, so one slow
	// issuer cannot hold a fetch slot for long.
	MaxTimeout = 30 * time.Second
	// parallel is how many fetches run at once.
	parallel = 8
)

// Sources lists the key sets snap's RequestAuthentications need meshd to
// fetch, by name. Rules with inline jwks need nothing.
func Sources(snap *model.Snapshot) map[string]source {
	out := map[string]source{}
	for _, cfg := range snap.Configs(model.KindRequestAuthentication) {
		for _, r := range cfg.Spec.(*security.RequestAuthentication).GetJwtRules() {
			if r.GetJwks() != "" {
				continue
			}
			s := source{name: model.JWKSName(r.GetJwksUri(), r.GetIssuer()), url: r.GetJwksUri(), timeout: defaultTimeout}
			if s.url == "" {
				s.url, s.discovery = r.GetIssuer(), true
			}
			if t := r.GetTimeout(); t != nil && t.AsDuration() > 0 {
				s.timeout = min(t.AsDuration(), MaxTimeout)
			}
			if prev, ok := out[s.name]; ok && prev.timeout < s.timeout {
				s.timeout = prev.timeout // the shortest any rule asks for
			}
			out[s.name] = s
		}
	}
	return out
}

// state is what the Resolver knows of one key set.
type state struct {
	src      source
	cur      *model.JWKS
	next     time.Time
	fetching bool
	tried    bool
}

// Run keeps the Store's key sets up to date until ctx is done: fetches
// run concurrently (at most 8 at once), each publishing its result as soon
// as it has it.
func (r *Resolver) Run(ctx context.Context) {
	r.init()
	r.Store.Subscribe(func(ev model.Event) {
		if ev.Kinds()[model.KindRequestAuthentication] {
			r.poke()
		}
	})
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		wait := r.sync(ctx)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-r.kick:
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

// init sets the Resolver's defaults and channels once.
func (r *Resolver) init() {
	r.once.Do(func() {
		if r.now == nil {
			r.now = time.Now
		}
		if r.Refresh <= 0 {
			r.Refresh = DefaultRefresh
		}
		r.kick = make(chan struct{}, 1)
		r.slots = make(chan struct{}, parallel)
		r.states = map[string]*state{}
		r.tried = make(chan struct{}, 1)
	})
}

// poke wakes Run.
func (r *Resolver) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// sync drops key sets no longer named, starts the fetches of those new or
// due, and returns how long Run may sleep.
func (r *Resolver) sync(ctx context.Context) time.Duration {
	want := Sources(r.Store.Current())
	r.mu.Lock()
	var drop []model.Change
	for name := range r.states {
		if _, ok := want[name]; !ok {
			delete(r.states, name)
			drop = append(drop, model.Change{Kind: model.KindJWKS, Name: name})
		}
	}
	wait := r.startDue(ctx, want)
	r.mu.Unlock()
	if len(drop) > 0 {
		r.Store.Apply(drop)
	}
	return wait
}

// startDue starts the fetches of the wanted key sets that are new or due
// (r.mu held) and returns how long Run may sleep.
func (r *Resolver) startDue(ctx context.Context, want map[string]source) time.Duration {
	wait := r.Refresh
	now := r.now()
	for name, src := range want {
		st := r.states[name]
		if st == nil {
			st = &state{}
			r.states[name] = st
		}
		st.src = src
		if st.fetching {
			continue
		}
		if st.cur != nil && now.Before(st.next) {
			wait = min(wait, st.next.Sub(now))
			continue
		}
		st.fetching = true
		go r.fetchAndPublish(ctx, name, st)
	}
	return wait
}

// fetchAndPublish fetches one key set (in a fetch slot) and publishes it.
func (r *Resolver) fetchAndPublish(ctx context.Context, name string, st *state) {
	select {
	case r.slots <- struct{}{}:
	case <-ctx.Done():
		return
	}
	r.mu.Lock()
	src, cur := st.src, st.cur
	r.mu.Unlock()
	next, due := r.fetchOne(ctx, src, cur)
	<-r.slots
	r.mu.Lock()
	st.fetching, st.next = false, due
	changed := next != st.cur
	st.cur = next
	live := r.states[name] == st
	r.mu.Unlock()
	if changed && live {
		r.Store.Apply([]model.Change{{Kind: model.KindJWKS, Name: name, Object: next}})
	}
	r.mu.Lock()
	st.tried = true // after the Store has the result (WaitInitial)
	r.mu.Unlock()
	select {
	case r.tried <- struct{}{}:
	default:
	}
	r.poke()
}

// WaitInitial blocks until every key set the Store's RequestAuthentications
// name has been fetched once (or failed), ctx is done, or max has passed:
// meshd serves its first config after it, so a restart does not reject
// valid tokens with the fail-closed key while its fetches are under way.
func (r *Resolver) WaitInitial(ctx context.Context, max time.Duration) {
	r.init()
	deadline := time.NewTimer(max)
	defer deadline.Stop()
	r.poke()
	for {
		if r.allTried() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			r.Logger.Warn("JWKS: serving before every key set was fetched", "waited", max)
			return
		case <-r.tried:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// allTried reports whether every key set currently named was tried once.
func (r *Resolver) allTried() bool {
	want := Sources(r.Store.Current())
	r.mu.Lock()
	defer r.mu.Unlock()
	for name := range want {
		if st := r.states[name]; st == nil || !st.tried {
			return false
		}
	}
	return true
}

// fetchOne fetches src's key set and returns its new value (cur itself
// when nothing changed) and when to fetch it again.
func (r *Resolver) fetchOne(ctx context.Context, src source, cur *model.JWKS) (*model.JWKS, time.Time) {
	keys, err := r.fetch(ctx, src)
	now := r.now()
	if err != nil {
		r.count(false)
		due := now.Add(min(r.Refresh, retryOnFailure))
		msg := err.Error()
		if cur != nil && cur.Err == msg {
			return cur, due
		}
		r.Logger.Warn("JWKS fetch failed; tokens of this issuer are rejected until it succeeds unless an older key set is held",
			"jwks", src.name, "error", msg)
		j := &model.JWKS{URI: src.url, Err: msg}
		if cur != nil && cur.Keys != "" {
			j.Keys, j.Fetched = cur.Keys, cur.Fetched
		}
		return j, due
	}
	r.count(true)
	due := now.Add(r.Refresh)
	if cur != nil && cur.Err == "" && cur.Keys == keys {
		return cur, due
	}
	if cur != nil && cur.Err != "" {
		r.Logger.Info("JWKS fetched again", "jwks", src.name)
	}
	return &model.JWKS{URI: src.url, Keys: keys, Fetched: now}, due
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
	uri := src.url
	if src.discovery {
		doc, err := r.get(ctx, strings.TrimSuffix(src.url, "/")+openIDSuffix, src.timeout)
		if err != nil {
			return "", fmt.Errorf("OpenID discovery of issuer %s: %w", src.url, err)
		}
		var d struct {
			JwksURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal(doc, &d); err != nil || d.JwksURI == "" {
			return "", fmt.Errorf("OpenID discovery of issuer %s: no jwks_uri in the document", src.url)
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
