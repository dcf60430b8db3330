package jobwrap

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quitEndpoint is a fake /quitquitquit answering status to POSTs.
func quitEndpoint(t *testing.T, status int) (string, *atomic.Int32) {
	var posts atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/quitquitquit" {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		posts.Add(1)
		w.WriteHeader(status)
	}))
	t.Cleanup(s.Close)
	return s.URL + "/quitquitquit", &posts
}

func TestQuitAgentFirst(t *testing.T) {
	agent, agentPosts := quitEndpoint(t, http.StatusOK)
	envoy, envoyPosts := quitEndpoint(t, http.StatusOK)
	u, err := Quit(context.Background(), newClient(), time.Second, agent, envoy)
	require.NoError(t, err)
	assert.Equal(t, agent, u)
	assert.Equal(t, int32(1), agentPosts.Load())
	assert.Equal(t, int32(0), envoyPosts.Load())
}

func TestQuitFallsBackToEnvoy(t *testing.T) {
	envoy, envoyPosts := quitEndpoint(t, http.StatusOK)
	for name, agent := range map[string]string{
		"refused": refusedURL(t, "/quitquitquit"),
		"non-2xx": func() string { u, _ := quitEndpoint(t, http.StatusForbidden); return u }(),
		"skipped": "",
	} {
		t.Run(name, func(t *testing.T) {
			before := envoyPosts.Load()
			u, err := Quit(context.Background(), newClient(), time.Second, agent, envoy)
			require.NoError(t, err)
			assert.Equal(t, envoy, u)
			assert.Equal(t, before+1, envoyPosts.Load())
		})
	}
}

func TestQuitBothFail(t *testing.T) {
	agent := refusedURL(t, "/quitquitquit")
	envoy, _ := quitEndpoint(t, http.StatusInternalServerError)
	_, err := Quit(context.Background(), newClient(), time.Second, agent, envoy)
	require.Error(t, err)
	assert.Regexp(t, `^POST `+agent+`: .*connection refused; POST `+envoy+`: 500 Internal Server Error$`, err.Error())

	_, err = Quit(context.Background(), newClient(), time.Second, "", "")
	assert.EqualError(t, err, "no quit URL")
}

// dropOnPost listens on loopback and, for each connection, reads the
// request and closes the connection without answering (pilot-agent
// exiting right after its 200). With exit, the listener closes too (the
// agent is gone); without, it keeps accepting.
func dropOnPost(t *testing.T, exit bool) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { lis.Close() })
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			_, _ = http.ReadRequest(bufio.NewReader(c))
			c.Close()
			if exit {
				lis.Close()
				return
			}
		}
	}()
	return "http://" + lis.Addr().String() + "/quitquitquit"
}

// TestQuitDroppedByExitingAgent: a dropped connection after which the
// port refuses connections counts as the proxy exiting; one after which
// it still listens is a failure (then the next URL is tried).
func TestQuitDroppedByExitingAgent(t *testing.T) {
	u, err := Quit(context.Background(), http.DefaultClient, 2*time.Second, dropOnPost(t, true))
	require.NoError(t, err)
	assert.Contains(t, u, "/quitquitquit")

	_, err = Quit(context.Background(), http.DefaultClient, 500*time.Millisecond, dropOnPost(t, false))
	require.Error(t, err, "still listening: not gone")
	assert.Contains(t, err.Error(), "EOF")
}
