package envoygolden

import (
	"context"
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
	admin := harness.FreePort(t)
	boot, err := Bootstrap(p.NodeID, admin, srv.Addr)
	require.NoError(t, err)
	e := harness.StartEnvoy(t, bin, boot, admin)
	return Check(t, e, srv, p, Within)
}
