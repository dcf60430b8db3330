package jobwrap

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// readyAfter is a fake readiness endpoint answering 503 n times, then 200.
func readyAfter(t *testing.T, n int32) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		assert.Equal(t, http.MethodGet, r.Method)
		assert.Equal(t, "/healthz/ready", r.URL.Path)
		if calls.Add(1) <= n {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(s.Close)
	return s, &calls
}

// refusedURL is a loopback URL where nothing listens.
func refusedURL(t *testing.T, path string) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return "http://" + addr + path
}

func TestWaitReadyPollsUntil200(t *testing.T) {
	s, calls := readyAfter(t, 3)
	err := WaitReady(context.Background(), newClient(), s.URL+"/healthz/ready", 10*time.Second, 10*time.Millisecond, nil)
	require.NoError(t, err)
	assert.Equal(t, int32(4), calls.Load())
}

func TestWaitReadyTimeoutNamesLastStatus(t *testing.T) {
	s, _ := readyAfter(t, 1<<30)
	u := s.URL + "/healthz/ready"
	start := time.Now()
	err := WaitReady(context.Background(), newClient(), u, time.Second, 20*time.Millisecond, nil)
	var nr *NotReadyError
	require.ErrorAs(t, err, &nr)
	assert.GreaterOrEqual(t, time.Since(start), time.Second)
	assert.Equal(t, "proxy not ready after 1s: GET "+u+": last status: 503 Service Unavailable", err.Error())
}

func TestWaitReadyTimeoutNamesLastError(t *testing.T) {
	u := refusedURL(t, "/healthz/ready")
	err := WaitReady(context.Background(), newClient(), u, time.Second, 20*time.Millisecond, nil)
	var nr *NotReadyError
	require.ErrorAs(t, err, &nr)
	assert.Equal(t, u, nr.URL)
	assert.Contains(t, nr.Last, "connection refused")
	assert.Contains(t, err.Error(), "proxy not ready after 1s: GET "+u+": last error: ")
}

func TestWaitReadyAnswerThatNeverComes(t *testing.T) {
	// A listener that accepts and never answers: each attempt is bounded.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	u := "http://" + l.Addr().String() + "/healthz/ready"
	err = WaitReady(context.Background(), newClient(), u, maxAttempt+500*time.Millisecond, 20*time.Millisecond, nil)
	var nr *NotReadyError
	require.ErrorAs(t, err, &nr)
	assert.Equal(t, "error: no answer within 2s", nr.Last)
}

func TestWaitReadyStopsOnSignal(t *testing.T) {
	u := refusedURL(t, "/")
	sigs := make(chan os.Signal, 1)
	sigs <- syscall.SIGTERM
	err := WaitReady(context.Background(), newClient(), u, time.Minute, 10*time.Millisecond, sigs)
	var se *SignalError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, syscall.SIGTERM, se.Signal)
	assert.Equal(t, 128+15, waitFailure(err))
	assert.Equal(t, ExitNotReady, waitFailure(&NotReadyError{}))
}
