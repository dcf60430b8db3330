package xds

import (
	"context"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/meshd/meshd/internal/ca"
)

func authNode(t *testing.T, ns string, meta map[string]any) *core.Node {
	m := map[string]any{"NAMESPACE": ns}
	for k, v := range meta {
		m[k] = v
	}
	st, err := structpb.NewStruct(m)
	require.NoError(t, err)
	return &core.Node{Id: "sidecar~10.0.0.1~app-1." + ns + "~" + ns + ".svc.cluster.local", Metadata: st}
}

func TestTrackerBindsIdentityToNode(t *testing.T) {
	s := New(Options{})
	id := ca.Identity{TrustDomain: "cluster.local", Namespace: "shop", ServiceAccount: "frontend"}
	ctx := ca.WithIdentity(context.Background(), id)
	failures := func(reason string) float64 { return testutil.ToFloat64(s.m.AuthFailures.WithLabelValues(reason)) }

	own := streamKey{id: 1}
	require.NoError(t, s.tracker.OnStreamOpen(ctx, own.id, ""))
	first := authNode(t, "shop", map[string]any{"SERVICE_ACCOUNT": "frontend"})
	require.NoError(t, s.tracker.open(own, first))
	require.NoError(t, s.tracker.open(own, first), "the same node again")
	err := s.tracker.open(own, authNode(t, "bank", nil))
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "a later request switching namespace: %v", err)
	assert.Equal(t, "spiffe://cluster.local/ns/shop/sa/frontend", s.tracker.snapshot()[0].Identity)

	other := streamKey{id: 2}
	require.NoError(t, s.tracker.OnStreamOpen(ctx, other.id, ""))
	err = s.tracker.open(other, authNode(t, "bank", nil))
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
	assert.Contains(t, err.Error(), `claims namespace "bank"`)
	err = s.tracker.open(other, authNode(t, "shop", map[string]any{"SERVICE_ACCOUNT": "payments"}))
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
	assert.Len(t, s.tracker.snapshot(), 1, "refused streams are not bound to a scope")
	assert.Equal(t, 2.0, failures("namespace"))
	assert.Equal(t, 1.0, failures("service_account"))

	plain := streamKey{id: 3} // no identity: the plaintext port, or XDS_AUTH off
	require.NoError(t, s.tracker.OnStreamOpen(context.Background(), plain.id, ""))
	require.NoError(t, s.tracker.open(plain, authNode(t, "bank", nil)))

	s.tracker.OnStreamClosed(other.id, nil)
	s.tracker.mu.Lock()
	assert.NotContains(t, s.tracker.idents, other, "identities are forgotten with their stream")
	s.tracker.mu.Unlock()
}

// fakeServerStream is a grpc.ServerStream with a context.
type fakeServerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (f fakeServerStream) Context() context.Context { return f.ctx }

func TestStreamAuth(t *testing.T) {
	s := New(Options{})
	authn, err := ca.ParseStaticTokensString("tok shop frontend")
	require.NoError(t, err)
	icpt := StreamAuth(authn, s.m.AuthFailures)
	ads := &grpc.StreamServerInfo{FullMethod: "/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources"}
	call := func(token string, info *grpc.StreamServerInfo) (ca.Identity, bool, error) {
		ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs("authorization", "Bearer "+token))
		var got ca.Identity
		var ok bool
		err := icpt(nil, fakeServerStream{ctx: ctx}, info, func(_ any, ss grpc.ServerStream) error {
			got, ok = ca.IdentityFrom(ss.Context())
			return nil
		})
		return got, ok, err
	}
	id, ok, err := call("tok", ads)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.Equal(t, "shop", id.Namespace)
	_, _, err = call("forged", ads)
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.Equal(t, "authentication failure", status.Convert(err).Message(), "the caller learns nothing of why")
	assert.Equal(t, 1.0, testutil.ToFloat64(s.m.AuthFailures.WithLabelValues("unauthenticated")))
	_, ok, err = call("forged", &grpc.StreamServerInfo{FullMethod: "/istio.v1.auth.IstioCertificateService/CreateCertificate"})
	require.NoError(t, err, "the CA service authenticates its own calls")
	assert.False(t, ok)
}
