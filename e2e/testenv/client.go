package testenv

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// HTTPClient returns a client that trusts the API server's CA and sends
// Token on every request. Callers use full URLs (Env.URL + path) and may
// change the returned client; all clients share one connection pool, closed
// by Stop.
func (e *Env) HTTPClient() *http.Client {
	return &http.Client{Transport: &bearer{token: e.Token, next: e.transport}}
}

// newTransport returns a transport trusting only the CA in caPEM.
func newTransport(caPEM []byte) *http.Transport {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		ForceAttemptHTTP2: true,
		IdleConnTimeout:   30 * time.Second,
	}
}

// bearer adds an Authorization header to each request.
type bearer struct {
	token string
	next  http.RoundTripper
}

// RoundTrip implements http.RoundTripper.
func (b *bearer) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(req)
}

// APIError is a non-2xx answer from the API server.
type APIError struct {
	Method, Path string
	Code         int
	Body         string
}

// Error implements error.
func (e *APIError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.Path, e.Code, e.Body)
}

// IsStatus reports whether err is an *APIError with the given HTTP status
// (e.g. http.StatusNotFound, http.StatusConflict).
func IsStatus(err error, code int) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Code == code
}

// Do sends one request as the admin user to path (e.g. "/api/v1/namespaces").
// in may be nil, a []byte sent as is (JSON or YAML), or a value encoded as
// JSON; a PATCH is sent as a merge patch. If out is non-nil the JSON answer
// is decoded into it. A non-2xx answer is returned as *APIError.
func (e *Env) Do(ctx context.Context, method, path string, in, out any) error {
	body, ctype, err := encodeBody(in, method)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.URL+path, body)
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := e.HTTPClient().Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return &APIError{Method: method, Path: path, Code: resp.StatusCode, Body: string(data)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

// encodeBody turns Do's in into a request body and its content type.
func encodeBody(in any, method string) (io.Reader, string, error) {
	if in == nil {
		return nil, "", nil
	}
	ctype := "application/json"
	if method == http.MethodPatch {
		ctype = "application/merge-patch+json"
	}
	if b, ok := in.([]byte); ok {
		if method != http.MethodPatch && !json.Valid(b) {
			ctype = "application/yaml"
		}
		return bytes.NewReader(b), ctype, nil
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, "", err
	}
	return bytes.NewReader(b), ctype, nil
}

// writeKubeconfig writes a kubeconfig for URL, the CA and Token to Dir.
func (e *Env) writeKubeconfig() error {
	e.Kubeconfig = filepath.Join(e.Dir, "kubeconfig")
	ca, err := json.Marshal(e.CAPEM) // []byte marshals as base64
	if err != nil {
		return err
	}
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: testenv
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: meshd-admin
  user:
    token: %s
contexts:
- name: testenv
  context:
    cluster: testenv
    user: meshd-admin
current-context: testenv
`, e.URL, ca, e.Token)
	return os.WriteFile(e.Kubeconfig, []byte(cfg), 0o600)
}
