package jobwrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Quit asks the proxy to exit: POST to each non-empty URL in turn (the
// agent's, then Envoy's admin) until one answers 2xx — or drops the
// connection without answering and then stops listening: pilot-agent
// writes its 200 and exits at once, so the answer can be lost to its own
// exit. It returns the URL that worked, or an error listing every attempt.
func Quit(ctx context.Context, client *http.Client, timeout time.Duration, urls ...string) (string, error) {
	var failed []string
	for _, u := range urls {
		if u == "" {
			continue
		}
		err := postOnce(ctx, client, timeout, u)
		if err == nil {
			return u, nil
		}
		failed = append(failed, err.Error())
	}
	if len(failed) == 0 {
		return "", fmt.Errorf("no quit URL")
	}
	return "", fmt.Errorf("%s", strings.Join(failed, "; "))
}

// postOnce POSTs an empty body to u within timeout; non-2xx is an error,
// and so is a dropped connection unless u's port then stops listening.
func postOnce(ctx context.Context, client *http.Client, timeout time.Duration, u string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return fmt.Errorf("POST %s: %w", u, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		if dropped(err) && stoppedListening(ctx, req.URL) {
			return nil // it exited before its answer got out
		}
		return fmt.Errorf("POST %s: %s", u, innerError(err))
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("POST %s: %s", u, resp.Status)
	}
	return nil
}

// dropped reports whether err is a connection closed without an answer
// (the request was sent: the server was there).
func dropped(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// stoppedListening reports whether u's host:port refuses connections
// before ctx is done: the proxy exited.
func stoppedListening(ctx context.Context, u *url.URL) bool {
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), map[string]string{"https": "443"}[u.Scheme]+map[string]string{"http": "80"}[u.Scheme])
	}
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", host)
		if err != nil {
			return errors.Is(err, syscall.ECONNREFUSED)
		}
		c.Close()
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}
