package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// client reads meshd's admin endpoints (or an Envoy's admin) over HTTP.
type client struct {
	// addr is the address as the user gave it, for messages and the
	// ISTIOD column; base is its URL without a trailing slash.
	addr, base string
	// envoy is set for an Envoy's admin (--envoy-admin), for messages.
	envoy bool
	http  *http.Client
}

// newClient returns a client of the admin server at addr: HOST:PORT or an
// http(s):// URL. Every request gives up after timeout.
func newClient(addr string, timeout time.Duration) *client {
	base := strings.TrimRight(addr, "/")
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &client{addr: addr, base: base, http: &http.Client{Timeout: timeout}}
}

// newEnvoyClient is newClient for an Envoy's admin.
func newEnvoyClient(addr string, timeout time.Duration) *client {
	c := newClient(addr, timeout)
	c.envoy = true
	return c
}

// unreachableError is a request that got no HTTP answer at all.
type unreachableError struct {
	addr  string
	envoy bool
	err   error
}

// Error says what failed and how to reach meshd (or Envoy).
func (e *unreachableError) Error() string {
	if e.envoy {
		return fmt.Sprintf("cannot reach Envoy's admin at %s: %v\n"+
			"  In a cluster, forward the pod's admin port first:\n"+
			"    kubectl -n NAMESPACE port-forward POD 15000:15000\n"+
			"  and use --envoy-admin http://127.0.0.1:15000.", e.addr, e.err)
	}
	return fmt.Sprintf("cannot reach meshd's admin at %s: %v\n"+
		"  Is meshd running with --admin-address %s? In a cluster, forward its admin port first:\n"+
		"    kubectl -n istio-system port-forward deploy/meshd 15014:15014\n"+
		"  and use --meshd-addr 127.0.0.1:15014 (or set MESHD_ADDR).", e.addr, e.err, e.addr)
}

// Unwrap returns the dial or transport error.
func (e *unreachableError) Unwrap() error { return e.err }

// httpError is a non-2xx answer; msg is meshd's {"error": ...} message,
// else the body's first line.
type httpError struct {
	url    string
	status int
	msg    string
}

// Error gives the URL, the status and meshd's message.
func (e *httpError) Error() string {
	if e.msg == "" {
		return fmt.Sprintf("GET %s: HTTP %d", e.url, e.status)
	}
	return fmt.Sprintf("GET %s: HTTP %d: %s", e.url, e.status, e.msg)
}

// isNotFound reports whether err is an HTTP 404 (meshd: proxy not connected).
func isNotFound(err error) bool {
	var he *httpError
	return errors.As(err, &he) && he.status == http.StatusNotFound
}

// get fetches path (with its query) and returns the body of a 2xx answer.
func (c *client) get(path string) ([]byte, error) {
	u := c.base + path
	resp, err := c.http.Get(u)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &unreachableError{addr: c.addr, envoy: c.envoy, err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the answer: %w", u, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, &httpError{url: u, status: resp.StatusCode, msg: errorMessage(body)}
	}
	return body, nil
}

// getJSON fetches path and decodes its JSON body into v.
func (c *client) getJSON(path string, v any) error {
	body, err := c.get(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s%s: decoding the answer: %w", c.base, path, err)
	}
	return nil
}

// errorMessage extracts meshd's {"error": "..."} message from an error
// body, or returns its first line (trimmed) for any other body.
func errorMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	s := strings.TrimSpace(string(body))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
