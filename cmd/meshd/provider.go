package main

import (
	"context"
	"fmt"
	"log/slog"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshd/meshd/discovery/file"
	"github.com/meshd/meshd/discovery/kube"
	"github.com/meshd/meshd/discovery/meshcfg"
	"github.com/meshd/meshd/internal/config"
	"github.com/meshd/meshd/internal/model"
)

// provider is a config source feeding the Store.
type provider interface {
	// Run feeds the Store until ctx is done.
	Run(ctx context.Context) error
	// Synced is closed once the Store holds the source's complete state.
	Synced() <-chan struct{}
}

// newProvider picks the file provider (--config-dir) or the Kubernetes one
// (cfg, which is nil for the file provider). The file provider has loaded
// the directory when it returns.
func newProvider(s *config.Settings, store *model.Store, cfg *rest.Config, log *slog.Logger) (provider, error) {
	static, err := staticMeshConfig(s, log)
	if err != nil {
		return nil, err
	}
	if s.ConfigDir != "" {
		if static != nil {
			store.Apply([]model.Change{meshcfg.Change(static.Spec, static.Source)})
		}
		p := &file.Provider{Dir: s.ConfigDir, Store: store, Domain: s.Domain, Interval: s.PollInterval, Logger: log}
		if err := p.Load(); err != nil {
			return nil, fmt.Errorf("loading %s: %w", s.ConfigDir, err)
		}
		return loadedFiles{p}, nil
	}
	// Secrets (gateway credentialName) are read only when the secure port
	// can hand them to authenticated gateways: none is ever sent over the
	// plaintext port (xds/sdsauth.go).
	return kube.New(kube.Options{Config: cfg, Store: store, Domain: s.Domain, RootNamespace: s.IstioNamespace,
		MeshConfigName: s.MeshConfigMap, StaticMeshConfig: static, Logger: log,
		WatchSecrets: s.Security.SecureEnabled() && s.Security.XDSAuth})
}

// staticMeshConfig reads --mesh-config, if given.
func staticMeshConfig(s *config.Settings, log *slog.Logger) (*model.MeshConfig, error) {
	if s.MeshConfigFile == "" {
		return nil, nil
	}
	spec, warning, err := meshcfg.ReadFile(s.MeshConfigFile)
	if err != nil {
		return nil, fmt.Errorf("--mesh-config: %w", err)
	}
	if warning != "" {
		log.Warn(warning, "file", s.MeshConfigFile)
	}
	return &model.MeshConfig{Spec: spec, Source: s.MeshConfigFile}, nil
}

// restConfig loads the kubeconfig, or the in-cluster config when none is given.
func restConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig != "" {
		cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
		}
		return tuned(cfg), nil
	}
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("no --config-dir or --kubeconfig given and not running in a cluster (%w)", err)
	}
	return tuned(cfg), nil
}

// tuned raises client-go's default client-side rate limit (5 QPS), which
// would slow the initial list of a large cluster, as istiod does.
func tuned(cfg *rest.Config) *rest.Config {
	cfg.QPS, cfg.Burst = 80, 160
	cfg.UserAgent = "meshd"
	return cfg
}

// loadedFiles adapts the file provider, whose Load has already filled the Store.
type loadedFiles struct{ *file.Provider }

var synced = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (loadedFiles) Synced() <-chan struct{} { return synced }
