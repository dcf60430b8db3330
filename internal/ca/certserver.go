package ca

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"
)

// metaImpersonatedIdentity is the IstioCertificateRequest metadata key of
// a node agent asking for another workload's certificate, as istiod's
// security.ImpersonatedIdentity. (istiod's CertSigner key is ignored.)
const metaImpersonatedIdentity = "ImpersonatedIdentity"

// CallerAuthenticator authenticates the gRPC caller of ctx; *Authenticator
// is one.
type CallerAuthenticator interface {
	Authenticate(ctx context.Context) (Identity, error)
}

// CertificateServer is Istio's CA service,
// istio.v1.auth.IstioCertificateService, as istiod serves it on 15012: the
// caller is authenticated and gets a workload certificate for its own
// identity only.
type CertificateServer struct {
	pb.UnimplementedIstioCertificateServiceServer
	ca      *CA
	authn   CallerAuthenticator
	metrics *certServerMetrics
	// signers bounds the signatures in progress to the CPUs: at a connect
	// storm, thousands of calls signing at once would all finish at the
	// end (each preempted by the others) instead of in turn.
	signers chan struct{}
}

// NewCertificateServer returns the CA service signing with ca for callers
// authn accepts. Its istiod-named counters are registered on reg (none when
// reg is nil).
func NewCertificateServer(ca *CA, authn CallerAuthenticator, reg prometheus.Registerer) (*CertificateServer, error) {
	m, err := newCertServerMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &CertificateServer{ca: ca, authn: authn, metrics: m, signers: make(chan struct{}, runtime.GOMAXPROCS(0))}, nil
}

// Register adds the service to a gRPC server.
func (s *CertificateServer) Register(g grpc.ServiceRegistrar) {
	pb.RegisterIstioCertificateServiceServer(g, s)
}

// CreateCertificate signs the request's CSR for the authenticated caller,
// for ValidityDuration seconds (the default TTL when not positive), as
// istiod's Server.CreateCertificate: Unauthenticated with an opaque message
// when authentication fails, InvalidArgument for a bad CSR or TTL, Internal
// otherwise. Unlike istiod, which overrides the CSR's names with the caller's
// identity, a CSR naming another identity is refused (InvalidArgument).
// Impersonation (CA_TRUSTED_NODE_ACCOUNTS) is not supported and refused as
// istiod refuses it when no node authorizer is configured.
func (s *CertificateServer) CreateCertificate(ctx context.Context, req *pb.IstioCertificateRequest) (*pb.IstioCertificateResponse, error) {
	s.metrics.csr.Inc()
	id, err := s.authn.Authenticate(ctx)
	if err != nil {
		s.metrics.authnError.Inc()
		return nil, status.Error(codes.Unauthenticated, "request authenticate failure")
	}
	if req.GetMetadata().GetFields()[metaImpersonatedIdentity].GetStringValue() != "" {
		s.metrics.authnError.Inc()
		return nil, status.Error(codes.Unauthenticated, "request impersonation authentication failure")
	}
	ttl := time.Duration(req.GetValidityDuration()) * time.Second
	select {
	case s.signers <- struct{}{}:
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	chain, err := s.sign([]byte(req.GetCsr()), id, ttl)
	<-s.signers
	if err != nil {
		return nil, err
	}
	s.metrics.success.Inc()
	return &pb.IstioCertificateResponse{CertChain: istiodChain(chain)}, nil
}

// sign signs csr for id and maps failures to istiod's gRPC codes and
// citadel_server_csr_sign_err_count labels (caerror.Error): a CSR that does
// not parse or names another identity is CSR_ERROR, a TTL above the maximum
// TTL_ERROR, both InvalidArgument; anything else CERT_GEN_ERROR, Internal.
func (s *CertificateServer) sign(csr []byte, id Identity, ttl time.Duration) ([]string, error) {
	label, code := signErrCSR, codes.InvalidArgument
	_, err := parseCSR(csr)
	if err != nil {
		s.metrics.csrParse.Inc()
	} else {
		var chain []string
		if chain, err = s.ca.Sign(csr, id, ttl); err == nil {
			return chain, nil
		}
		switch {
		case errors.Is(err, ErrTTL):
			label = signErrTTL
		case errors.Is(err, ErrIdentityMismatch):
			s.metrics.idExtraction.Inc()
		default:
			label, code = signErrCertGen, codes.Internal
		}
	}
	s.metrics.signErrors.WithLabelValues(label).Inc()
	return nil, status.Errorf(code, "CSR signing error (%v)", err)
}

// istiodChain shapes a Sign chain (leaf, intermediates, root) as istiod's
// response: every certificate but the root as its own element ending in
// exactly one "\n", the root PEM last as the CA holds it.
func istiodChain(chain []string) []string {
	out := make([]string, 0, len(chain))
	for i, c := range chain {
		if i < len(chain)-1 {
			c = strings.TrimPrefix(strings.TrimSuffix(c, "\n"), "\n") + "\n"
		}
		out = append(out, c)
	}
	return out
}
