package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshd/meshd/discovery/kube"
	"github.com/meshd/meshd/internal/ca"
	"github.com/meshd/meshd/internal/config"
	"github.com/meshd/meshd/internal/metrics"
	"github.com/meshd/meshd/internal/secureport"
	"github.com/meshd/meshd/xds"
)

// securePort is istiod's 15012: ADS and Istio's CA service over TLS.
type securePort struct {
	g   *grpc.Server
	lis net.Listener
	ca  *ca.CA
	src secureport.CertSource // its serving certificate, shared with the injection webhook
}

// newSecurePort builds the mesh CA, the authenticator and the TLS gRPC
// server of the secure port, with the ADS service of srv and the CA service
// registered, listening but not yet serving. It returns nil when the port is
// off: by --secure-xds-address off, or because the file provider has no way
// to authenticate callers (no --static-tokens) while XDS_AUTH is on.
func newSecurePort(ctx context.Context, s *config.Settings, srv *xds.Server, m *metrics.Metrics,
	cfg *rest.Config, client kubernetes.Interface, log *slog.Logger) (*securePort, error) {
	sec := s.Security
	if !sec.SecureEnabled() {
		return nil, nil
	}
	var reviews kubernetes.Interface
	if cfg != nil {
		var err error
		if reviews, err = reviewClient(cfg); err != nil {
			return nil, err
		}
	}
	authn, err := secureport.NewAuthenticator(secureport.AuthnOptions{StaticTokens: sec.StaticTokens, Client: reviews,
		TrustDomain: sec.TrustDomain, Audiences: sec.Audiences()})
	if errors.Is(err, secureport.ErrNoAuthenticator) {
		log.Info("secure port off: the file provider cannot authenticate callers without --static-tokens")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	meshCA, err := newMeshCA(ctx, s, client)
	if err != nil {
		return nil, err
	}
	names := ca.IstiodDNSNames(s.IstioNamespace, "", sec.CustomHosts()...)
	src, err := secureport.NewCertSource(sec.CertProvider, meshCA, names, sec.CustomCertDir, log)
	if err != nil {
		return nil, err
	}
	certs, err := ca.NewCertificateServer(meshCA, authn, m.Registry)
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", sec.SecureXDSAddress)
	if err != nil {
		return nil, fmt.Errorf("listening for secure ADS on %s: %w", sec.SecureXDSAddress, err)
	}
	var auth []grpc.StreamServerInterceptor
	if sec.XDSAuth {
		auth = append(auth, xds.StreamAuth(authn, m.AuthFailures))
	}
	g := grpc.NewServer(append(grpcOptions(s, m, auth...),
		grpc.Creds(credentials.NewTLS(secureport.TLSConfig(src))))...)
	srv.Register(ctx, g)
	certs.Register(g)
	log.Info("mesh CA ready", "source", string(meshCA.Source()), "trustDomain", sec.TrustDomain,
		"namespace", s.IstioNamespace, "xdsAuth", sec.XDSAuth)
	return &securePort{g: g, lis: lis, ca: meshCA, src: src}, nil
}

// TokenReview's client-side rate limit. The informers' client allows 80
// requests/s (as istiod's), which made 2,000 new pods wait up to 23 s for
// their certificates (README, Performance): every new pod's token is
// reviewed once. The API server's priority and fairness still applies.
const (
	tokenReviewQPS   = 500
	tokenReviewBurst = 500
)

// reviewClient is a Kubernetes client of its own for TokenReviews, so that a
// connect storm neither waits for nor delays the informers' requests.
func reviewClient(cfg *rest.Config) (kubernetes.Interface, error) {
	c := rest.CopyConfig(cfg)
	c.QPS, c.Burst = tokenReviewQPS, tokenReviewBurst
	client, err := kubernetes.NewForConfig(c)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client for TokenReviews: %w", err)
	}
	return client, nil
}

// newMeshCA builds the mesh CA from ROOT_CA_DIR's plug-in files, else the
// cacerts Secret, else istio-ca-secret's self-signed root (created if
// absent). Without a cluster (the file provider) the Secrets live in memory:
// a new self-signed root at every start.
func newMeshCA(ctx context.Context, s *config.Settings, client kubernetes.Interface) (*ca.CA, error) {
	var store ca.SecretStore = &ca.MemoryStore{}
	if client != nil {
		store = ca.KubeStore{Client: client.CoreV1()}
	}
	sec := s.Security
	return ca.New(ctx, ca.DirStore{Dir: sec.RootCADir, Next: store}, ca.Options{Namespace: s.IstioNamespace,
		TrustDomain: sec.TrustDomain, DefaultCertTTL: sec.DefaultWorkloadCertTTL, MaxCertTTL: sec.MaxWorkloadCertTTL})
}

// publishRootCert keeps the mesh root in the istio-ca-root-cert ConfigMap of
// every namespace the discoverySelectors admit, as istiod's namespace
// controller, until ctx is done.
func publishRootCert(ctx context.Context, client kubernetes.Interface, meshCA *ca.CA, prov provider, log *slog.Logger) error {
	opts := ca.RootCertOptions{Logger: log}
	kp, watched := prov.(*kube.Provider)
	if watched {
		opts.Filter = kp.Admits
	}
	pub := ca.NewRootCertPublisher(client, meshCA.Root(), opts)
	if watched {
		kp.OnSelectionChange(pub.Resync)
	}
	return pub.Run(ctx)
}
