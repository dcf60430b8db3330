package ca

import (
	"context"
	"crypto/x509"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/types/known/structpb"
	pb "istio.io/api/security/v1alpha1"
)

// caFixture is a CertificateServer on a real gRPC server over bufconn, with
// a fake TokenReview API knowing token "foo-token" of foo/bar.
type caFixture struct {
	ca       *CA
	reviewer *FakeTokenReviewer
	server   *CertificateServer
	reg      *prometheus.Registry
	client   pb.IstioCertificateServiceClient
}

func newCAFixture(t *testing.T, c *CA) *caFixture {
	t.Helper()
	f := &caFixture{ca: c, reviewer: NewFakeTokenReviewer(), reg: prometheus.NewRegistry()}
	f.reviewer.AddServiceAccount("foo-token", "foo", "bar", DefaultTokenAudience)
	var err error
	f.server, err = NewCertificateServer(c, NewAuthenticator(f.reviewer, AuthenticatorOptions{}), f.reg)
	require.NoError(t, err)

	lis := bufconn.Listen(1 << 20)
	g := grpc.NewServer()
	f.server.Register(g)
	go func() { _ = g.Serve(lis) }()
	t.Cleanup(g.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	f.client = pb.NewIstioCertificateServiceClient(conn)
	return f
}

// call sends a CreateCertificate with token as bearer (none when empty).
func (f *caFixture) call(t *testing.T, token string, req *pb.IstioCertificateRequest) (*pb.IstioCertificateResponse, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if token != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	}
	return f.client.CreateCertificate(ctx, req)
}

// counter reads one of the server's counters.
func (f *caFixture) counter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func TestCreateCertificateIssuesVerifiableChain(t *testing.T) {
	for name, c := range map[string]*CA{
		"self-signed": newSelfSignedCA(t, &MemoryStore{}),
		"plugged":     newPluggedCA(t, newPlugged(t)),
	} {
		t.Run(name, func(t *testing.T) {
			f := newCAFixture(t, c)
			resp, err := f.call(t, "foo-token", &pb.IstioCertificateRequest{
				Csr:              string(newCSR(t, []string{fooID.SPIFFEID()}, nil)),
				ValidityDuration: 3600,
			})
			require.NoError(t, err)
			chain := resp.GetCertChain()
			require.GreaterOrEqual(t, len(chain), 2)
			assert.Equal(t, string(c.Root()), chain[len(chain)-1], "the root is last, as the CA holds it")
			for i, s := range chain[:len(chain)-1] {
				assert.True(t, strings.HasSuffix(s, "-----\n") && !strings.HasSuffix(s, "\n\n"), "element %d ends in one newline", i)
			}

			certs := parseChain(t, chain)
			roots, inters := x509.NewCertPool(), x509.NewCertPool()
			require.True(t, roots.AppendCertsFromPEM(c.Root()))
			for _, ic := range certs[1 : len(certs)-1] {
				inters.AddCert(ic)
			}
			leaf := certs[0]
			_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inters, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
			require.NoError(t, err)
			require.Len(t, leaf.URIs, 1)
			assert.Equal(t, fooID.SPIFFEID(), leaf.URIs[0].String())
			assert.WithinDuration(t, time.Now().Add(time.Hour), leaf.NotAfter, time.Minute)

			assert.Equal(t, 1.0, f.counter(t, "citadel_server_csr_count"))
			assert.Equal(t, 1.0, f.counter(t, "citadel_server_success_cert_issuance_count"))
		})
	}
}

func TestCreateCertificateDefaultTTL(t *testing.T) {
	f := newCAFixture(t, newSelfSignedCA(t, &MemoryStore{}))
	resp, err := f.call(t, "foo-token", &pb.IstioCertificateRequest{Csr: string(newCSR(t, []string{fooID.SPIFFEID()}, nil))})
	require.NoError(t, err)
	leaf := parseChain(t, resp.GetCertChain())[0]
	assert.WithinDuration(t, time.Now().Add(DefaultWorkloadCertTTL), leaf.NotAfter, time.Minute)
}

func TestCreateCertificateRefuses(t *testing.T) {
	good := string(newCSR(t, []string{fooID.SPIFFEID()}, nil))
	impersonate, err := structpb.NewStruct(map[string]any{"ImpersonatedIdentity": "spiffe://cluster.local/ns/foo/sa/other"})
	require.NoError(t, err)
	tests := []struct {
		name      string
		token     string
		req       *pb.IstioCertificateRequest
		code      codes.Code
		msg       string
		counter   string
		signLabel string
	}{
		{"no token", "", &pb.IstioCertificateRequest{Csr: good}, codes.Unauthenticated, "request authenticate failure", "citadel_server_authentication_failure_count", ""},
		{"invalid token", "bogus", &pb.IstioCertificateRequest{Csr: good}, codes.Unauthenticated, "request authenticate failure", "citadel_server_authentication_failure_count", ""},
		{"impersonation", "foo-token", &pb.IstioCertificateRequest{Csr: good, Metadata: impersonate}, codes.Unauthenticated, "impersonation", "citadel_server_authentication_failure_count", ""},
		{"other identity", "foo-token", &pb.IstioCertificateRequest{Csr: string(newCSR(t, []string{"spiffe://cluster.local/ns/bank/sa/admin"}, nil))},
			codes.InvalidArgument, "CSR identity does not match", "citadel_server_id_extraction_err_count", signErrCSR},
		{"garbage CSR", "foo-token", &pb.IstioCertificateRequest{Csr: "not a csr"}, codes.InvalidArgument, "no PEM certificate request", "citadel_server_csr_parsing_err_count", signErrCSR},
		{"TTL above max", "foo-token", &pb.IstioCertificateRequest{Csr: good, ValidityDuration: int64(DefaultMaxWorkloadCertTTL/time.Second) + 1},
			codes.InvalidArgument, "greater than the max allowed TTL", "citadel_server_csr_sign_err_count", signErrTTL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newCAFixture(t, newSelfSignedCA(t, &MemoryStore{}))
			_, err := f.call(t, tt.token, tt.req)
			require.Error(t, err)
			st := status.Convert(err)
			assert.Equal(t, tt.code, st.Code())
			assert.Contains(t, st.Message(), tt.msg)
			assert.Equal(t, 1.0, f.counter(t, tt.counter))
			assert.Equal(t, 0.0, f.counter(t, "citadel_server_success_cert_issuance_count"))
			if tt.signLabel != "" {
				assert.Equal(t, 1.0, testutil.ToFloat64(f.server.metrics.signErrors.WithLabelValues(tt.signLabel)))
			}
		})
	}
}

func TestCreateCertificateCachesAuthentication(t *testing.T) {
	f := newCAFixture(t, newSelfSignedCA(t, &MemoryStore{}))
	for range 2 {
		_, err := f.call(t, "foo-token", &pb.IstioCertificateRequest{Csr: string(newCSR(t, []string{fooID.SPIFFEID()}, nil))})
		require.NoError(t, err)
	}
	assert.Equal(t, 1, f.reviewer.Reviews())
	assert.Equal(t, 2.0, f.counter(t, "citadel_server_success_cert_issuance_count"))
}

func TestNewCertificateServerRegistersOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := newSelfSignedCA(t, &MemoryStore{})
	_, err := NewCertificateServer(c, NewAuthenticator(NewFakeTokenReviewer(), AuthenticatorOptions{}), reg)
	require.NoError(t, err)
	_, err = NewCertificateServer(c, NewAuthenticator(NewFakeTokenReviewer(), AuthenticatorOptions{}), reg)
	assert.ErrorContains(t, err, "registering Citadel server metrics")
	_, err = NewCertificateServer(c, NewAuthenticator(NewFakeTokenReviewer(), AuthenticatorOptions{}), nil)
	assert.NoError(t, err)
}

func TestIstiodChainShape(t *testing.T) {
	got := istiodChain([]string{"\nleaf\n\n", "inter", "root\n"})
	assert.Equal(t, []string{"leaf\n\n", "inter\n", "root\n"}, got)
}
