package harness

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// HTTPBackend is a real HTTP/1.1 server that names itself: every response
// carries the header "x-backend: <name>" and a JSON body (Echo) with the
// name, the path and the Host it was asked for. Tests script failures and
// delays with its setters.
type HTTPBackend struct {
	Name string
	IP   string
	Port int
	srv  *http.Server

	status  atomic.Int32 // answer with this status (0: 200)
	delay   atomic.Int64 // wait this long (ns) before answering
	alt     atomic.Int32 // fail every other request with this status (0: never)
	hits    atomic.Int64
	mu      sync.Mutex
	lastReq Echo
}

// Echo is an HTTPBackend's response body.
type Echo struct {
	Backend string `json:"backend"`
	Path    string `json:"path"`
	Host    string `json:"host"`
	// XFCC is the x-forwarded-client-cert header the request came with: a
	// sidecar that terminated Istio mTLS names the client's identity there.
	XFCC string `json:"xfcc,omitempty"`
}

// StartHTTPBackend serves on ip:port until the test ends.
func StartHTTPBackend(t testing.TB, name, ip string, port int) *HTTPBackend {
	t.Helper()
	lis, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	require.NoError(t, err)
	b := &HTTPBackend{Name: name, IP: ip, Port: lis.Addr().(*net.TCPAddr).Port}
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = b.srv.Serve(lis) }()
	t.Cleanup(func() { _ = b.srv.Close() })
	return b
}

// ServeHTTP answers as scripted.
func (b *HTTPBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := b.hits.Add(1)
	e := Echo{Backend: b.Name, Path: r.URL.Path, Host: r.Host, XFCC: r.Header.Get("X-Forwarded-Client-Cert")}
	b.mu.Lock()
	b.lastReq = e
	b.mu.Unlock()
	if d := time.Duration(b.delay.Load()); d > 0 {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("x-backend", b.Name)
	w.Header().Set("content-type", "application/json")
	status := int(b.status.Load())
	if alt := int(b.alt.Load()); alt != 0 && n%2 == 1 {
		status = alt
	}
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(e)
}

// SetStatus makes every response have this status (0: 200).
func (b *HTTPBackend) SetStatus(code int) { b.status.Store(int32(code)) }

// SetDelay makes every response wait d.
func (b *HTTPBackend) SetDelay(d time.Duration) { b.delay.Store(int64(d)) }

// FailEveryOther makes the 1st, 3rd, 5th ... request answer status (0:
// stop failing).
func (b *HTTPBackend) FailEveryOther(status int) { b.alt.Store(int32(status)) }

// Hits is how many requests reached the backend.
func (b *HTTPBackend) Hits() int64 { return b.hits.Load() }

// Last is the last request the backend saw.
func (b *HTTPBackend) Last() Echo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.lastReq
}

// Shutdown stops accepting connections and lets in-flight requests finish,
// as a terminating pod does.
func (b *HTTPBackend) Shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = b.srv.Shutdown(ctx)
}
