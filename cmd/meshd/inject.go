package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/meshd/meshd/internal/config"
	"github.com/meshd/meshd/internal/inject"
	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/internal/secureport"
)

// The sidecar injection webhook (istiod's /inject on :15017), served with
// the secure port's serving certificate when the secure port is on and a
// cluster is watched. RBAC: list and watch on nodes (for
// ENABLE_NATIVE_SIDECARS=auto; without them pods get a regular sidecar),
// and get, list, watch and patch on mutatingwebhookconfigurations (the
// caBundle patcher).
type injector struct {
	lis     net.Listener
	web     *http.Server
	patcher *inject.CABundlePatcher
	factory informers.SharedInformerFactory // nodes, for ENABLE_NATIVE_SIDECARS=auto
	synced  cache.InformerSynced            // the node informer's; nil without it
	log     *slog.Logger
}

// newInjector builds the webhook, listening but not yet serving; nil when
// it is off, the secure port is off or no cluster is watched.
func newInjector(s *config.Settings, secure *securePort, client kubernetes.Interface, store *model.Store,
	log *slog.Logger) (*injector, error) {
	in := s.Inject
	if !in.InjectorEnabled() || secure == nil || client == nil {
		return nil, nil
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	nodes := func() ([]*corev1.Node, error) { return nil, nil }
	var synced cache.InformerSynced
	if in.NativeSidecars == config.NativeSidecarsAuto {
		// Waited for a while only: without node access (RBAC) pods get a
		// regular sidecar, as with istiod.
		lister := factory.Core().V1().Nodes()
		informer := lister.Informer()
		synced = informer.HasSynced
		nodes = func() ([]*corev1.Node, error) {
			if !informer.HasSynced() {
				return nil, errors.New("the node informer has not synced (is list/watch on nodes granted?)")
			}
			return lister.Lister().List(labels.Everything())
		}
	}
	h := inject.NewHandler(inject.HandlerOptions{
		// The namespace selectors are the API server's (NamespaceLabels nil):
		// an informer could lag behind a namespace just labelled.
		Settings:   func() inject.Settings { return injectSettings(s, store) },
		Nodes:      nodes,
		NativeMode: in.NativeSidecars,
		FailOpen:   in.FailurePolicy == config.FailOpen,
		Logger:     log.With("component", "injector"),
	})
	mux := http.NewServeMux()
	mux.Handle("/inject", h)
	mux.Handle("/inject/", h) // istiod's /inject/cluster/X/net/Y form; the parameters are not read
	lis, err := net.Listen("tcp", in.Address)
	if err != nil {
		return nil, fmt.Errorf("listening for the injection webhook on %s: %w", in.Address, err)
	}
	web := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: webhookTLS(secure.src),
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	patcher := inject.NewCABundlePatcher(client.AdmissionregistrationV1().MutatingWebhookConfigurations(),
		webhookCABundle(s, secure, log))
	return &injector{lis: lis, web: web, patcher: patcher, factory: factory, synced: synced, log: log}, nil
}

// webhookTLS serves the secure port's certificate over HTTP/2 or 1.1.
func webhookTLS(src secureport.CertSource) *tls.Config {
	c := secureport.TLSConfig(src)
	c.NextProtos = []string{"h2", "http/1.1"}
	return c
}

// injectSettings are inject.Settings from meshd's settings and the mesh
// config in force.
func injectSettings(s *config.Settings, store *model.Store) inject.Settings {
	mesh := store.Current().MeshConfig()
	is := inject.DefaultSettings(s.Inject.ProxyImage)
	is.MeshdImage = s.Inject.MeshdImage
	is.Revision = s.Inject.Revision
	is.DiscoveryAddress = s.Inject.Discovery(s.IstioNamespace, mesh.GetDefaultConfig().GetDiscoveryAddress())
	is.Domain = s.Domain
	is.ClusterID = s.Inject.ClusterID
	is.TrustDomain = s.Security.TrustDomain
	is.CNI = s.Inject.CNI
	is.RewriteAppProbes = s.Inject.RewriteAppProbes
	is.Mesh = mesh
	return is
}

// nodeSyncWait bounds the wait for the node list before serving.
const nodeSyncWait = 10 * time.Second

// Run keeps the caBundle, serves once the provider has synced (so the mesh
// config is known), and returns nil when ctx is done.
func (j *injector) Run(ctx context.Context, providerSynced <-chan struct{}) error {
	j.factory.Start(ctx.Done())
	defer j.factory.Shutdown()
	go func() { _ = j.patcher.Run(ctx) }()
	if j.synced != nil {
		wait, cancel := context.WithTimeout(ctx, nodeSyncWait)
		if !cache.WaitForCacheSync(wait.Done(), j.synced) && ctx.Err() == nil {
			j.log.Warn("nodes not listed; until they are, pods get a regular sidecar (ENABLE_NATIVE_SIDECARS=auto)")
		}
		cancel()
	}
	select {
	case <-providerSynced:
	case <-ctx.Done():
		return nil
	}
	errc := make(chan error, 1)
	go func() { errc <- j.web.ServeTLS(j.lis, "", "") }()
	j.log.Info("sidecar injection webhook serving", "address", j.lis.Addr().String(), "path", "/inject")
	select {
	case err := <-errc:
		return fmt.Errorf("injection webhook: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := j.web.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// addr is the listen address, for the start-up log line.
func (j *injector) addr() string { return j.lis.Addr().String() }

// webhookCABundle is what the webhook's caBundle must trust: the mesh root
// when meshd's CA issues the serving certificate, the custom
// certificate's CA bundle (ca.crt beside tls.crt, as istiod reads it)
// when PILOT_CERT_PROVIDER=custom.
func webhookCABundle(s *config.Settings, secure *securePort, log *slog.Logger) inject.CABundleOptions {
	o := inject.CABundleOptions{Name: s.Inject.WebhookConfig(s.IstioNamespace), Root: secure.ca.Root(), Logger: log}
	if s.Security.CertProvider == config.CertProviderCustom {
		o.Root, o.RootFile = nil, filepath.Join(s.Security.CustomCertDir, "ca.crt")
	}
	return o
}
