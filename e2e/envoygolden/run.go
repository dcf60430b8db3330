package envoygolden

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/harness"
)

// Within is how long a case's Envoy may take to load everything.
const Within = 30 * time.Second

// Run serves p from a new in-process server, starts a real Envoy (bin) on
// it and returns Envoy's verdict. Both stop at the end of the test.
func Run(t testing.TB, bin string, p *Plan) Verdict {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	srv, err := StartServer(ctx)
	require.NoError(t, err)
	t.Cleanup(srv.Stop)
	require.NoError(t, srv.Serve(ctx, p))
	admin := FreePort(t)
	boot, err := Bootstrap(p.NodeID, admin, srv.Addr)
	require.NoError(t, err)
	e := harness.StartEnvoy(t, bin, boot, admin)
	return Check(t, e, srv, p, Within)
}

var ports struct {
	sync.Mutex
	given map[int]bool
}

// FreePort returns a port free on this machine that FreePort has not
// returned before in this process, so parallel Envoys never get the same
// one for an admin interface or a listener.
func FreePort(t testing.TB) int {
	t.Helper()
	ports.Lock()
	defer ports.Unlock()
	if ports.given == nil {
		ports.given = map[int]bool{}
	}
	for {
		l, err := net.Listen("tcp", "0.0.0.0:0")
		require.NoError(t, err)
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !ports.given[p] {
			ports.given[p] = true
			return p
		}
	}
}
