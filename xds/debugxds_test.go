package xds

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	meshconfig "istio.io/api/mesh/v1alpha1"

	"github.com/meshd/meshd/internal/ca"
	"github.com/meshd/meshd/internal/model"
)

// echoDebug stands for the admin handler: it writes the request URI.
var echoDebug = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = w.Write([]byte(r.URL.RequestURI()))
})

// debugServer is a Server with a snapshot whose mesh root namespace is
// mesh-root, serving echoDebug to identities of istio-system, mesh-root and
// ops with every endpoint.
func debugServer(t *testing.T) *Server {
	t.Helper()
	st := testStore(t)
	st.Apply([]model.Change{{Kind: model.KindMeshConfig, Name: "mesh", Object: &model.MeshConfig{
		Spec: model.WithDefaults(&meshconfig.MeshConfig{RootNamespace: "mesh-root"}), Source: "test"}}})
	s := New(Options{})
	s.PushSnapshot(st.Current())
	s.ServeDebug(DebugAccess{Handler: echoDebug, SystemNamespace: "istio-system", AllowedNamespaces: []string{"ops"}})
	return s
}

func identityCtx(ns string) context.Context {
	return ca.WithIdentity(context.Background(), ca.Identity{TrustDomain: "cluster.local", Namespace: ns, ServiceAccount: "default"})
}

// connect binds the secure-port stream id of proxy app-1.<ns>, as the
// tracker does on its first request.
func connect(t *testing.T, s *Server, id int64, ns string) {
	t.Helper()
	require.NoError(t, s.tracker.OnStreamOpen(identityCtx(ns), id, ""))
	require.NoError(t, s.tracker.open(streamKey{id: id}, authNode(t, ns, nil)))
}

func TestDebugRules(t *testing.T) {
	s := debugServer(t)
	// A shop and a bank proxy on the secure port, and a plaintext proxy
	// taking an ID of shop while claiming bank.
	connect(t, s, 1, "shop")
	connect(t, s, 2, "bank")
	require.NoError(t, s.tracker.OnStreamOpen(context.Background(), 3, ""))
	require.NoError(t, s.tracker.open(streamKey{id: 3}, node(t, "sidecar~10.0.0.9~twin-1.shop~shop.svc.cluster.local", "bank")))
	refused := func(reason string) float64 { return testutil.ToFloat64(s.debugRefused.WithLabelValues(reason)) }

	for name, c := range map[string]struct {
		ctx     context.Context
		typeURL string
		names   []string
		code    codes.Code
		msg     string
		body    string
	}{
		"no identity (plaintext port, XDS_AUTH off)": {ctx: context.Background(), names: []string{"syncz"},
			code: codes.Unauthenticated, msg: "authentication required"},
		"istio namespace reads anything": {ctx: identityCtx("istio-system"), names: []string{"syncz"}, body: "/debug/syncz"},
		"istio namespace reads any proxy": {ctx: identityCtx("istio-system"), names: []string{"config_dump?proxyID=app-1.bank"},
			body: "/debug/config_dump?proxyID=app-1.bank"},
		"mesh root namespace reads anything": {ctx: identityCtx("mesh-root"), names: []string{"adsz"}, body: "/debug/adsz"},
		"allowed namespace reads anything":   {ctx: identityCtx("ops"), names: []string{"registryz"}, body: "/debug/registryz"},
		"no name":                            {ctx: identityCtx("istio-system"), code: codes.InvalidArgument, msg: "exactly one debug request is required"},
		"two names": {ctx: identityCtx("istio-system"), names: []string{"syncz", "adsz"},
			code: codes.InvalidArgument, msg: "exactly one debug request is required"},
		"not an endpoint": {ctx: identityCtx("istio-system"), names: []string{"http://evil.example/x"}, code: codes.InvalidArgument},
		"out of /debug/":  {ctx: identityCtx("istio-system"), names: []string{"../metrics"}, code: codes.InvalidArgument},
		"other namespace, other endpoint": {ctx: identityCtx("shop"), names: []string{"syncz"}, code: codes.PermissionDenied,
			msg: `the debug info is not available for current identity: "spiffe://cluster.local/ns/shop/sa/default"`},
		"other namespace, endpoint through config_dump": {ctx: identityCtx("shop"), names: []string{"config_dump/../syncz"},
			code: codes.PermissionDenied},
		"other namespace, own proxy by pod.namespace": {ctx: identityCtx("shop"), names: []string{"config_dump?proxyID=app-1.shop"},
			body: "/debug/config_dump?proxyID=app-1.shop"},
		"other namespace, own proxy by node ID": {ctx: identityCtx("shop"),
			names: []string{"config_dump?proxyID=sidecar~10.0.0.1~app-1.shop~shop.svc.cluster.local"},
			body:  "/debug/config_dump?proxyID=sidecar~10.0.0.1~app-1.shop~shop.svc.cluster.local"},
		"other namespace, another namespace's proxy": {ctx: identityCtx("shop"), names: []string{"config_dump?proxyID=app-1.bank"},
			code: codes.PermissionDenied, msg: `"app-1.bank" is not one`},
		"other namespace, a proxy not connected": {ctx: identityCtx("shop"), names: []string{"config_dump?proxyID=gone-1.shop"},
			code: codes.PermissionDenied},
		"other namespace, an ID another namespace's proxy also takes": {ctx: identityCtx("shop"),
			names: []string{"config_dump?proxyID=twin-1.shop"}, code: codes.PermissionDenied},
		"other namespace, no proxyID: the handler says it wants one": {ctx: identityCtx("shop"), names: []string{"config_dump"},
			body: "/debug/config_dump"},
		"istio's status types are not served": {ctx: identityCtx("istio-system"), typeURL: debugTypePrefix + "syncz",
			code: codes.Unimplemented},
		"istio's status types without identity": {ctx: context.Background(), typeURL: debugTypePrefix + "syncz",
			code: codes.Unauthenticated},
	} {
		t.Run(name, func(t *testing.T) {
			typeURL := c.typeURL
			if typeURL == "" {
				typeURL = DebugType
			}
			res, err := s.answerDebug(debugRequest{ctx: c.ctx, typeURL: typeURL, names: c.names, node: "debug~0.0.0.0~istioctl~cluster.local"})
			if c.code != codes.OK {
				assert.Nil(t, res)
				assert.Equal(t, c.code, status.Code(err), "%v", err)
				assert.Contains(t, status.Convert(err).Message(), c.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, DebugType, res.GetTypeUrl())
			assert.Equal(t, c.body, string(res.GetValue()))
		})
	}
	assert.Equal(t, 2.0, refused(debugUnauthenticated))
	assert.Equal(t, 4.0, refused(debugInvalid))
	assert.Equal(t, 2.0, refused(debugEndpoint))
	assert.Equal(t, 3.0, refused(debugProxy))
	assert.Equal(t, 1.0, refused(debugUnsupported))
}

func TestDebugRefusedUntilServed(t *testing.T) {
	s := New(Options{})
	_, err := s.answerDebug(debugRequest{ctx: identityCtx("istio-system"), typeURL: DebugType, names: []string{"syncz"}})
	assert.Equal(t, codes.Unimplemented, status.Code(err), "%v", err)
}

// debugPorts serves s on a "secure" port (StreamAuth over static tokens
// istio-system, shop and bank) and a "plaintext" one, both on loopback
// without TLS, as meshd serve registers one ADS service on both.
func debugPorts(t *testing.T, s *Server) (secure, plain *grpc.ClientConn) {
	t.Helper()
	authn, err := ca.ParseStaticTokensString("sys istio-system default\nshop shop frontend\nbank bank teller")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	dial := func(opts ...grpc.ServerOption) *grpc.ClientConn {
		g := grpc.NewServer(append([]grpc.ServerOption{Codec()}, opts...)...)
		s.Register(ctx, g)
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		go func() { _ = g.Serve(lis) }()
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close(); g.Stop() })
		return conn
	}
	t.Cleanup(cancel)
	return dial(grpc.ChainStreamInterceptor(StreamAuth(authn, s.m.AuthFailures))), dial()
}

// sotwDebug opens a state-of-the-world stream with token (none: "") and
// sends one request of istioctl's node.
func sotwDebug(t *testing.T, conn *grpc.ClientConn, token string, req *discovery.DiscoveryRequest) discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	req.Node = node(t, "debug~0.0.0.0~istioctl~cluster.local", "")
	require.NoError(t, stream.Send(req))
	return stream
}

// A debug stream is answered with the endpoint's output, its ACK is not
// answered again, it is never bound to a proxy or scope, and it is
// refused config.
func TestDebugOverSotW(t *testing.T) {
	s := debugServer(t)
	secure, plain := debugPorts(t, s)

	stream := sotwDebug(t, secure, "sys", &discovery.DiscoveryRequest{TypeUrl: DebugType, ResourceNames: []string{"syncz"}})
	r, err := stream.Recv()
	require.NoError(t, err)
	assert.Equal(t, DebugType, r.GetTypeUrl())
	require.Len(t, r.GetResources(), 1)
	assert.Equal(t, DebugType, r.GetResources()[0].GetTypeUrl())
	assert.Equal(t, "/debug/syncz", string(r.GetResources()[0].GetValue()))
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: DebugType, ResourceNames: []string{"syncz"},
		VersionInfo: r.GetVersionInfo(), ResponseNonce: r.GetNonce()}))
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: DebugType, ResourceNames: []string{"adsz"}, ResponseNonce: r.GetNonce()}))
	r2, err := stream.Recv()
	require.NoError(t, err)
	assert.Equal(t, "/debug/adsz", string(r2.GetResources()[0].GetValue()), "the ACK is not answered; another endpoint is")
	assert.NotEqual(t, r.GetNonce(), r2.GetNonce())
	assert.Empty(t, s.Proxies(), "a debug stream is no proxy")
	s.mu.Lock()
	assert.Empty(t, s.scopes, "nor has it a scope")
	s.mu.Unlock()

	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: resourcev3.ClusterType}))
	_, err = stream.Recv()
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "a debug stream is sent no config: %v", err)
	assert.Empty(t, s.Proxies())

	t.Run("adsc's node (istioctl) is not parsed: it need not parse", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer sys"), 10*time.Second)
		defer cancel()
		stream, err := discovery.NewAggregatedDiscoveryServiceClient(secure).StreamAggregatedResources(ctx)
		require.NoError(t, err)
		// adsc's node, on a host without a private IP: an empty IP field.
		n := node(t, "sidecar~~test-1.istio-system~istio-system.svc.cluster.local", "istio-system")
		_, perr := parseNode(n)
		require.Error(t, perr)
		require.NoError(t, stream.Send(&discovery.DiscoveryRequest{Node: n, TypeUrl: DebugType, ResourceNames: []string{"syncz"}}))
		r, err := stream.Recv()
		require.NoError(t, err)
		assert.Equal(t, "/debug/syncz", string(r.GetResources()[0].GetValue()))
		assert.Empty(t, s.Proxies())
	})
	t.Run("the plaintext port refuses", func(t *testing.T) {
		stream := sotwDebug(t, plain, "", &discovery.DiscoveryRequest{TypeUrl: DebugType, ResourceNames: []string{"syncz"}})
		_, err := stream.Recv()
		assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
		assert.Equal(t, "authentication required", status.Convert(err).Message())
	})
	t.Run("another namespace is refused syncz", func(t *testing.T) {
		stream := sotwDebug(t, secure, "shop", &discovery.DiscoveryRequest{TypeUrl: DebugType, ResourceNames: []string{"syncz"}})
		_, err := stream.Recv()
		assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	})
	t.Run("a proxy may ask for its own config_dump on its stream", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer shop"), 10*time.Second)
		defer cancel()
		stream, err := discovery.NewAggregatedDiscoveryServiceClient(secure).StreamAggregatedResources(ctx)
		require.NoError(t, err)
		require.NoError(t, stream.Send(&discovery.DiscoveryRequest{Node: authNode(t, "shop", nil), TypeUrl: resourcev3.ClusterType}))
		rx := receiver(stream)
		r, ok := recvWithin(t, rx, 5*time.Second)
		require.True(t, ok)
		require.Equal(t, resourcev3.ClusterType, r.GetTypeUrl())
		require.NoError(t, stream.Send(&discovery.DiscoveryRequest{TypeUrl: DebugType, ResourceNames: []string{"config_dump?proxyID=app-1.shop"}}))
		r, ok = recvWithin(t, rx, 5*time.Second)
		require.True(t, ok)
		assert.Equal(t, "/debug/config_dump?proxyID=app-1.shop", string(r.GetResources()[0].GetValue()))
	})
}

func TestDebugOverDelta(t *testing.T) {
	s := debugServer(t)
	secure, plain := debugPorts(t, s)
	open := func(conn *grpc.ClientConn, token string, names ...string) discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesClient {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		if token != "" {
			ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
		}
		stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
		require.NoError(t, err)
		require.NoError(t, stream.Send(&discovery.DeltaDiscoveryRequest{Node: node(t, "debug~0.0.0.0~istioctl~cluster.local", ""),
			TypeUrl: DebugType, ResourceNamesSubscribe: names}))
		return stream
	}

	stream := open(secure, "sys", "syncz")
	r, err := stream.Recv()
	require.NoError(t, err)
	require.Len(t, r.GetResources(), 1)
	assert.Equal(t, "syncz", r.GetResources()[0].GetName())
	assert.Equal(t, "/debug/syncz", string(r.GetResources()[0].GetResource().GetValue()))
	require.NoError(t, stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: DebugType, ResponseNonce: r.GetNonce()}))
	require.NoError(t, stream.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType}))
	_, err = stream.Recv()
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "the ACK is not answered; config is refused: %v", err)
	assert.Empty(t, s.Proxies())

	_, err = open(plain, "", "syncz").Recv()
	assert.Equal(t, codes.Unauthenticated, status.Code(err), "%v", err)
	_, err = open(secure, "shop", "syncz").Recv()
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "%v", err)
	_, err = open(secure, "shop", "syncz", "adsz").Recv()
	assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
}
