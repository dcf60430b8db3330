package jobwrap

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"
)

// NotReadyError is WaitReady's error when the timeout passed first: the
// URL, what it last answered (a status or an error) and the timeout.
type NotReadyError struct {
	URL     string
	Last    string
	Timeout time.Duration
}

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("proxy not ready after %s: GET %s: last %s", e.Timeout, e.URL, e.Last)
}

// SignalError is returned when a signal arrived while waiting.
type SignalError struct{ Signal os.Signal }

func (e *SignalError) Error() string {
	return fmt.Sprintf("got %v while waiting for the proxy", e.Signal)
}

// maxAttempt bounds one readiness request, so that a listener that accepts
// and never answers does not use up the whole timeout.
const maxAttempt = 2 * time.Second

// WaitReady polls readyURL with GET every interval until it answers 200,
// timeout passes (0: no limit; *NotReadyError), a signal arrives on sigs
// (*SignalError) or ctx ends.
func WaitReady(ctx context.Context, client *http.Client, readyURL string, timeout, interval time.Duration, sigs <-chan os.Signal) error {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	last := "answer: none"
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ok, what := pollOnce(ctx, client, readyURL)
		if ok {
			return nil
		}
		if what != "" {
			last = what
		}
		select {
		case <-ctx.Done():
			if timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return &NotReadyError{URL: readyURL, Last: last, Timeout: timeout}
			}
			return ctx.Err()
		case s := <-sigs:
			return &SignalError{Signal: s}
		case <-tick.C:
		}
	}
}

// pollOnce makes one GET; it reports whether the answer was 200, else
// what came back ("" when ctx ended during the request).
func pollOnce(ctx context.Context, client *http.Client, readyURL string) (bool, string) {
	actx, cancel := context.WithTimeout(ctx, maxAttempt)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, readyURL, nil)
	if err != nil {
		return false, "error: " + err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, ""
		}
		if actx.Err() != nil {
			return false, fmt.Sprintf("error: no answer within %s", maxAttempt)
		}
		return false, "error: " + innerError(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return true, ""
	}
	return false, "status: " + resp.Status
}

// innerError is err without the "Get URL:" that url.Error adds (the
// message names the URL already).
func innerError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// newClient is an HTTP client for the sidecar's loopback endpoints: no
// proxy from the environment, no kept-alive connections.
func newClient() *http.Client {
	return &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
}
