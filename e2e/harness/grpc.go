package harness

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthgrpc "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/xds" // the xds:/// resolver and balancers
)

// Backend is a real gRPC server (the health service) that names itself in
// the "backend" response header.
type Backend struct {
	Name string
	IP   string
	Port int
	srv  *grpc.Server
}

type namedHealth struct {
	healthgrpc.UnimplementedHealthServer
	name string
}

func (h namedHealth) Check(ctx context.Context, _ *healthgrpc.HealthCheckRequest) (*healthgrpc.HealthCheckResponse, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs("backend", h.name))
	return &healthgrpc.HealthCheckResponse{Status: healthgrpc.HealthCheckResponse_SERVING}, nil
}

// StartBackend serves on ip:port (port 0: chosen by the kernel) until the
// test ends, answering health checks with its name in the "backend" header.
func StartBackend(t testing.TB, name, ip string, port int) *Backend {
	return StartBackendWith(t, name, ip, port, namedHealth{name: name})
}

// StartBackendWith is StartBackend with a health service of the test's own
// (to script failures, delays or headers).
func StartBackendWith(t testing.TB, name, ip string, port int, h healthgrpc.HealthServer) *Backend {
	t.Helper()
	lis, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port)))
	require.NoError(t, err)
	b := &Backend{Name: name, IP: ip, Port: lis.Addr().(*net.TCPAddr).Port, srv: grpc.NewServer()}
	healthgrpc.RegisterHealthServer(b.srv, h)
	go func() { _ = b.srv.Serve(lis) }()
	t.Cleanup(b.srv.Stop)
	return b
}

// Stop stops the backend at once.
func (b *Backend) Stop() { b.srv.Stop() }

// GracefulStop lets in-flight RPCs finish, as a terminating pod does.
func (b *Backend) GracefulStop() { b.srv.GracefulStop() }

// DialXDS connects grpc-go's xDS client to meshd as a proxyless client with
// node ID nodeID in namespace ns, and dials target (xds:///host:port).
func DialXDS(t testing.TB, xdsAddr, nodeID, ns, target string) *grpc.ClientConn {
	t.Helper()
	return dialXDSWith(t, xdsAddr, `[{"type": "insecure"}]`, "", nodeID, ns, target)
}

// DialXDSSecure is DialXDS over meshd's secure port as grpc-go's xDS client
// does it: TLS verified against the root in rootFile (serverURI's host must be
// a name of the serving certificate), and the service-account token of
// tokenFile on every xDS call (its JWT call credentials, which grpc-go
// enables with GRPC_EXPERIMENTAL_XDS_BOOTSTRAP_CALL_CREDS=true in the test
// process's environment).
func DialXDSSecure(t testing.TB, serverURI, rootFile, tokenFile, nodeID, ns, target string) *grpc.ClientConn {
	t.Helper()
	creds := fmt.Sprintf(`[{"type": "tls", "config": {"ca_certificate_file": %q}}]`, rootFile)
	call := fmt.Sprintf(`, "call_creds": [{"type": "jwt_token_file", "config": {"jwt_token_file": %q}}]`, tokenFile)
	return dialXDSWith(t, serverURI, creds, call, nodeID, ns, target)
}

// dialXDSWith dials target through a resolver with its own bootstrap (and
// xDS client pool), so tests do not share an xDS client or depend on
// process-wide environment.
func dialXDSWith(t testing.TB, serverURI, channelCreds, callCreds, nodeID, ns, target string) *grpc.ClientConn {
	bootstrap := fmt.Sprintf(`{
  "xds_servers": [{"server_uri": %q, "channel_creds": %s%s, "server_features": ["xds_v3"]}],
  "node": {"id": %q, "metadata": {"NAMESPACE": %q, "GENERATOR": "grpc"}}
}`, serverURI, channelCreds, callCreds, nodeID, ns)
	res, err := xds.NewXDSResolverWithConfigForTesting([]byte(bootstrap))
	require.NoError(t, err)
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithResolvers(res))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Call makes one RPC (5 s deadline) and returns the backend that served it.
func Call(ctx context.Context, conn *grpc.ClientConn) (string, error) {
	var hdr metadata.MD
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := healthgrpc.NewHealthClient(conn).Check(ctx, &healthgrpc.HealthCheckRequest{}, grpc.Header(&hdr))
	if err != nil {
		return "", err
	}
	if v := hdr.Get("backend"); len(v) == 1 {
		return v[0], nil
	}
	return "", fmt.Errorf("response without backend header")
}

// Spread makes n RPCs and counts them per backend; any error fails the test.
func Spread(t testing.TB, conn *grpc.ClientConn, n int) map[string]int {
	t.Helper()
	out := map[string]int{}
	for i := 0; i < n; i++ {
		b, err := Call(context.Background(), conn)
		require.NoError(t, err, "RPC %d failed", i)
		out[b]++
	}
	return out
}

// Share is the fraction of counted calls that reached the named backends.
func Share(counts map[string]int, names ...string) float64 {
	total, hit := 0, 0
	for b, n := range counts {
		total += n
		for _, want := range names {
			if b == want {
				hit += n
			}
		}
	}
	if total == 0 {
		return 0
	}
	return float64(hit) / float64(total)
}
