package kube

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	istioinformers "istio.io/client-go/pkg/informers/externalversions"
	kubeinformers "k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	"github.com/meshd/meshd/internal/model"
)

// Options configure a Provider.
type Options struct {
	// Config is the API server connection (from --kubeconfig or in-cluster).
	Config *rest.Config
	Store  *model.Store
	// Domain is the cluster DNS domain (default cluster.local).
	Domain string
	// RootNamespace holds the istio ConfigMap (default istio-system).
	RootNamespace string
	// MeshConfigName is the ConfigMap holding MeshConfig under key "mesh"
	// (default "istio"). Ignored when StaticMeshConfig is set.
	MeshConfigName string
	// StaticMeshConfig, when set (--mesh-config), replaces the ConfigMap.
	StaticMeshConfig *model.MeshConfig
	Logger           *slog.Logger
	// WatchSecrets reads TLS Secrets (gateway credentialName). meshd sets
	// it when the secure port serves authenticated proxies (secrets are
	// never sent elsewhere); without it meshd needs no access to Secrets
	// and holds none.
	WatchSecrets bool
}

// Provider keeps a Store in step with a Kubernetes cluster.
type Provider struct {
	opts    Options
	log     *slog.Logger
	kube    kubernetes.Interface
	istio   istioclient.Interface
	kubeInf kubeinformers.SharedInformerFactory
	istInf  istioinformers.SharedInformerFactory
	meshInf kubeinformers.SharedInformerFactory
	secInf  kubeinformers.SharedInformerFactory // Secrets, with a field selector

	informers map[string]cache.SharedIndexInformer // by model kind, for listing
	events    *eventReporter
	q         queue
	synced    atomic.Bool
	syncedCh  chan struct{}

	// selMu orders object handlers against selection changes (lockSelection).
	selMu sync.RWMutex
	mu    sync.Mutex
	sel   *selection
	// selHooks are called after the discoverySelectors change.
	selHooks []func()
	mesh     *model.MeshConfig
	reported map[string]string // change key → last error message reported
}

// New connects the clients and prepares the informers; Run starts them.
func New(opts Options) (*Provider, error) {
	if opts.Domain == "" {
		opts.Domain = "cluster.local"
	}
	if opts.RootNamespace == "" {
		opts.RootNamespace = "istio-system"
	}
	if opts.MeshConfigName == "" {
		opts.MeshConfigName = "istio"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	kc, err := kubernetes.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	ic, err := istioclient.NewForConfig(opts.Config)
	if err != nil {
		return nil, fmt.Errorf("istio client: %w", err)
	}
	p := &Provider{
		opts: opts, log: opts.Logger, kube: kc, istio: ic,
		kubeInf:  kubeinformers.NewSharedInformerFactory(kc, 0),
		istInf:   istioinformers.NewSharedInformerFactory(ic, 0),
		meshInf:  kubeinformers.NewSharedInformerFactoryWithOptions(kc, 0, kubeinformers.WithNamespace(opts.RootNamespace)),
		secInf:   newSecretInformers(kc),
		syncedCh: make(chan struct{}), sel: allNamespaces(), reported: map[string]string{},
	}
	p.q.init()
	p.events = newEventReporter(kc, opts.Logger)
	if err := p.setupInformers(); err != nil {
		return nil, err
	}
	return p, nil
}

// Synced is closed once every informer has synced and the initial state has
// been applied to the Store.
func (p *Provider) Synced() <-chan struct{} { return p.syncedCh }

// Run starts the informers, waits for them to sync, applies the complete
// initial state in one Store.Apply, then applies changes as they arrive,
// batched, until ctx is done.
func (p *Provider) Run(ctx context.Context) error {
	p.kubeInf.Start(ctx.Done())
	p.istInf.Start(ctx.Done())
	p.meshInf.Start(ctx.Done())
	p.secInf.Start(ctx.Done())
	defer p.kubeInf.Shutdown()
	defer p.istInf.Shutdown()
	defer p.meshInf.Shutdown()
	defer p.secInf.Shutdown()
	p.events.start(ctx)
	defer p.events.stop()

	start := time.Now()
	for kind, inf := range p.informers {
		if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
			return fmt.Errorf("waiting for the %s informer to sync: %w", kind, ctx.Err())
		}
	}
	p.synced.Store(true)
	p.applyInitial()
	p.log.Info("kubernetes informers synced", "duration", time.Since(start).Round(time.Millisecond))
	close(p.syncedCh)
	return p.drain(ctx)
}

// drain applies queued changes in batches until ctx is done.
func (p *Provider) drain(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-p.q.ready:
		}
		if batch := p.q.take(); len(batch) > 0 {
			p.opts.Store.Apply(batch)
		}
	}
}
