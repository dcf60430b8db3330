package ca

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// Names of the per-namespace root certificate ConfigMap, as istiod's
// (pilot/pkg/features.CACertConfigMapName, pkg/config/constants and
// pilot/pkg/serviceregistry/kube/controller/namespacecontroller.go).
const (
	// RootCertConfigMapName is the ConfigMap every namespace gets.
	RootCertConfigMapName = "istio-ca-root-cert"
	// RootCertConfigMapKey is its data key holding the root certificate PEM.
	RootCertConfigMapKey = "root-cert.pem"
	// RootCertConfigMapLabel is set to "true" on the ConfigMap.
	RootCertConfigMapLabel = "istio.io/config"
)

// Retry backoff of a failed namespace: per-namespace exponential from istiod's
// 5 ms, capped, under an overall bucket as client-go's default controller
// limiter.
const (
	rootCertBaseBackoff = 5 * time.Millisecond
	rootCertMaxBackoff  = time.Minute
)

// syncMarker is queued after the initial list; no namespace has an empty name.
const syncMarker = ""

// RootCertOptions configure a RootCertPublisher. The zero value publishes to
// every namespace istiod would and logs to slog.Default().
type RootCertOptions struct {
	// Filter, when set, restricts publishing to the namespaces it returns
	// true for (e.g. discovery selectors, or a single watched namespace). It
	// must be cheap and safe for concurrent use; after its answers change,
	// call Resync. A namespace it later rejects keeps its ConfigMap, as with
	// istiod.
	Filter func(ns *corev1.Namespace) bool
	// Logger receives one line per failed write, naming the namespace.
	Logger *slog.Logger
}

// RootCertPublisher keeps the istio-ca-root-cert ConfigMap in every
// namespace, as istiod's namespace controller does: it is created where
// missing, its root-cert.pem restored when edited and the whole ConfigMap
// recreated when deleted. Writes go through a rate-limited work queue, so a
// failure is retried with backoff.
type RootCertPublisher struct {
	client kubernetes.Interface
	root   string
	filter func(*corev1.Namespace) bool
	log    *slog.Logger

	queue      workqueue.TypedRateLimitingInterface[string]
	factories  []informers.SharedInformerFactory
	namespaces corelisters.NamespaceLister
	configMaps corelisters.ConfigMapLister
	synced     []cache.InformerSynced
	setupErr   error

	started atomic.Bool
	ready   atomic.Bool
}

// NewRootCertPublisher builds a publisher of rootPEM; nothing runs until Run.
func NewRootCertPublisher(client kubernetes.Interface, rootPEM []byte, opts RootCertOptions) *RootCertPublisher {
	p := &RootCertPublisher{
		client: client,
		root:   string(rootPEM),
		filter: opts.Filter,
		log:    opts.Logger,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(rootCertRateLimiter(),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "root_cert_publisher"}),
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	p.setupInformers()
	return p
}

// rootCertRateLimiter is the queue's retry backoff.
func rootCertRateLimiter() workqueue.TypedRateLimiter[string] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](rootCertBaseBackoff, rootCertMaxBackoff),
		&workqueue.TypedBucketRateLimiter[string]{Limiter: rate.NewLimiter(rate.Limit(10), 100)},
	)
}

// setupInformers builds a namespace informer and an informer of the
// istio-ca-root-cert ConfigMaps in all namespaces, and registers handlers.
func (p *RootCertPublisher) setupInformers() {
	nsFactory := informers.NewSharedInformerFactory(p.client, 0)
	cmFactory := informers.NewSharedInformerFactoryWithOptions(p.client, 0,
		informers.WithTweakListOptions(rootCertFieldSelector))
	p.factories = []informers.SharedInformerFactory{nsFactory, cmFactory}

	nsInformer := nsFactory.Core().V1().Namespaces()
	cmInformer := cmFactory.Core().V1().ConfigMaps()
	p.namespaces = nsInformer.Lister()
	p.configMaps = cmInformer.Lister()

	nsReg, err1 := nsInformer.Informer().AddEventHandler(p.namespaceHandler())
	cmReg, err2 := cmInformer.Informer().AddEventHandler(p.configMapHandler())
	if err := errors.Join(err1, err2); err != nil {
		p.setupErr = err
		return
	}
	p.synced = []cache.InformerSynced{nsReg.HasSynced, cmReg.HasSynced}
}

// Run publishes until ctx is done. It returns nil when ctx ends and an error
// if called twice or if its informers could not be set up.
func (p *RootCertPublisher) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("root cert publisher: Run called twice")
	}
	if p.setupErr != nil {
		p.queue.ShutDown()
		return p.setupErr
	}
	stop := context.AfterFunc(ctx, p.queue.ShutDown)
	defer stop()
	for _, f := range p.factories {
		f.Start(ctx.Done())
	}
	// Run returns only once ctx is done (a failed cache sync or the queue
	// shutting down both mean that), so Shutdown does not block for long.
	defer func() {
		for _, f := range p.factories {
			f.Shutdown()
		}
	}()
	if !cache.WaitForCacheSync(ctx.Done(), p.synced...) {
		return nil
	}
	p.queue.Add(syncMarker)
	for p.processNext(ctx) {
	}
	return nil
}

// HasSynced reports whether every namespace present when Run started has
// been reconciled once (successfully or queued for retry).
func (p *RootCertPublisher) HasSynced() bool { return p.ready.Load() }

// Resync queues every known namespace, e.g. after the Filter's answers
// changed. It is safe to call at any time.
func (p *RootCertPublisher) Resync() {
	nss, err := p.namespaces.List(labels.Everything())
	if err != nil {
		p.log.Warn("listing namespaces for root cert resync", "error", err)
		return
	}
	for _, ns := range nss {
		p.queue.Add(ns.Name)
	}
}

// processNext reconciles one queued namespace; false means the queue is shut
// down.
func (p *RootCertPublisher) processNext(ctx context.Context) bool {
	ns, shutdown := p.queue.Get()
	if shutdown {
		return false
	}
	defer p.queue.Done(ns)
	if ns == syncMarker {
		p.ready.Store(true)
		return true
	}
	if err := p.sync(ctx, ns); err != nil {
		p.log.Warn("publishing root certificate ConfigMap, will retry",
			"namespace", ns, "configmap", RootCertConfigMapName,
			"attempts", p.queue.NumRequeues(ns)+1, "error", err)
		p.queue.AddRateLimited(ns)
		return true
	}
	p.queue.Forget(ns)
	return true
}
