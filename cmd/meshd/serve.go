package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshd/meshd/discovery/file"
	"github.com/meshd/meshd/internal/admin"
	"github.com/meshd/meshd/internal/config"
	"github.com/meshd/meshd/internal/metrics"
	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/internal/push"
	"github.com/meshd/meshd/xds"
)

// gcPercent is meshd's GOGC unless the environment sets one: the heap
// grows to 1.5 times what is live instead of 2 times. Pushes allocate in
// bursts (a connect storm, a canary rebuilding every scope); at 2,000
// proxies this keeps peak memory near 300 MB instead of 400-500 MB, for
// about 7% more CPU in a canary (README, Performance).
const gcPercent = 50

// serve wires provider → store → debounce → xDS server, plus admin, and runs
// until SIGTERM or SIGINT.
func serve(args []string) error {
	s, err := config.Parse(args, os.Getenv)
	if err != nil {
		return err
	}
	log := s.Logger(os.Stderr)
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	store := model.NewStore()
	var cfg *rest.Config // nil for the file provider
	if s.ConfigDir == "" {
		if cfg, err = restConfig(s.Kubeconfig); err != nil {
			return err
		}
	}
	prov, err := newProvider(s, store, cfg, log)
	if err != nil {
		return err
	}
	m := metrics.New()
	srv := xds.New(xds.Options{Domain: s.Domain, Logger: log, Metrics: m,
		PushThrottle: s.PushThrottle, FilterGatewayClusters: s.FilterGatewayClusterConfig,
		ScopeGatewayToNamespace: s.ScopeGatewayToNamespace})
	// Until the provider has synced nothing is served (proxies wait) and
	// /ready says 503: a partial registry must never reach a proxy.
	started := make(chan struct{})
	deb := push.NewDebouncer(s.Debounce, func(r push.Request) {
		select {
		case <-started:
			srv.Push(r)
		default: // the initial PushSnapshot below includes this change
		}
	})
	store.Subscribe(deb.Enqueue)
	resolver, err := startJWKS(ctx, s, store, m, log)
	if err != nil {
		return err
	}

	var client kubernetes.Interface
	if cfg != nil {
		if client, err = kubernetes.NewForConfig(cfg); err != nil {
			return fmt.Errorf("kubernetes client: %w", err)
		}
	}
	secure, err := newSecurePort(ctx, s, srv, m, cfg, client, log)
	if err != nil {
		return err
	}
	inj, err := newInjector(s, secure, client, store, log)
	if err != nil {
		return err
	}
	var xdsLis net.Listener
	if s.XDSAddress != config.Off {
		if xdsLis, err = net.Listen("tcp", s.XDSAddress); err != nil {
			return fmt.Errorf("listening for ADS on %s: %w", s.XDSAddress, err)
		}
	}
	adminLis, err := net.Listen("tcp", s.AdminAddress)
	if err != nil {
		return fmt.Errorf("listening for admin on %s: %w", s.AdminAddress, err)
	}
	g := grpc.NewServer(grpcOptions(s, m)...)
	srv.Register(ctx, g)
	debugHTTP := admin.New(srv, store, m.Registry)
	// /debug/whatif reads a change as the providers would (meshctl what-if).
	debugHTTP.EnableWhatIf(file.ChangeDecoder(file.ChangeOptions{Domain: s.Domain,
		MeshNamespace: s.IstioNamespace, MeshConfigMap: s.MeshConfigMap}))
	web := &http.Server{Handler: debugHTTP, ReadHeaderTimeout: 10 * time.Second}
	// The debug endpoints over xDS (istio.io/debug), for authenticated
	// streams only: in effect, the secure port's.
	srv.ServeDebug(xds.DebugAccess{Handler: debugHTTP, SystemNamespace: s.IstioNamespace,
		AllowedNamespaces: s.Security.DebugAllowedNamespaces()})

	errc := make(chan error, 8)
	go func() { deb.Run(ctx); errc <- nil }()
	go func() { errc <- prov.Run(ctx) }()
	go func() {
		select {
		case <-prov.Synced():
			resolver.WaitInitial(ctx, jwksInitialWait) // the first push has the synced config's key sets
			close(started)
			srv.PushSnapshot(store.Current())
		case <-ctx.Done():
		}
	}()
	listening := []any{"admin", adminLis.Addr().String()}
	if xdsLis != nil {
		go func() { errc <- g.Serve(xdsLis) }()
		listening = append(listening, "ads", xdsLis.Addr().String())
	}
	if secure != nil {
		go func() { errc <- secure.g.Serve(secure.lis) }()
		listening = append(listening, "secureAds", secure.lis.Addr().String())
		if client != nil {
			go func() {
				select { // after the sync, so the discoverySelectors are known
				case <-prov.Synced():
					errc <- publishRootCert(ctx, client, secure.ca, prov, log)
				case <-ctx.Done():
				}
			}()
		}
	}
	if inj != nil {
		go func() { errc <- inj.Run(ctx, prov.Synced()) }()
		listening = append(listening, "inject", inj.addr())
	}
	go func() {
		if err := web.Serve(adminLis); !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	log.Info("meshd serving", append(append(listening, "source", s.Source()), s.LogAttrs()...)...)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	log.Info("shutting down")
	stop()
	if secure != nil {
		shutdown(secure.g, nil)
	}
	shutdown(g, web)
	return runErr
}

// grpcOptions are the options of both ADS servers (plaintext and secure):
// meshd's codec, the new-stream rate limit, then extra interceptors, then
// the send throttle, and istiod's keepalive.
func grpcOptions(s *config.Settings, m *metrics.Metrics, extra ...grpc.StreamServerInterceptor) []grpc.ServerOption {
	ka := s.Keepalive
	chain := append([]grpc.StreamServerInterceptor{
		xds.StreamRateLimit(s.MaxRequestsPerSecond, s.MaxRequestsBurst, config.StreamMaxWait, m.StreamsRefused)},
		extra...)
	chain = append(chain, xds.SendThrottle(s.PushThrottle))
	return append(xds.TransportOptions(),
		grpc.ChainStreamInterceptor(chain...),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: ka.Time, Timeout: ka.Timeout,
			MaxConnectionAge: ka.MaxConnectionAge, MaxConnectionAgeGrace: ka.MaxConnectionAgeGrace}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: ka.MinClientPing(), PermitWithoutStream: true}),
	)
}

// shutdown stops the servers (web may be nil), waiting a bounded time for streams to end.
func shutdown(g *grpc.Server, web *http.Server) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if web != nil {
		_ = web.Shutdown(ctx)
	}
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.Stop()
	}
}
