package main

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/meshd/meshd/internal/config"
	"github.com/meshd/meshd/internal/jwks"
	"github.com/meshd/meshd/internal/metrics"
	"github.com/meshd/meshd/internal/model"
)

// jwksInitialWait bounds how long meshd's first push waits for the key
// sets the synced config names (a restart must not serve the fail-closed
// key to valid tokens while its fetches are under way).
const jwksInitialWait = 15 * time.Second

// startJWKS runs the JWKS resolver, which fetches RequestAuthentications'
// jwksUris into the Store, until ctx is done.
func startJWKS(ctx context.Context, s *config.Settings, store *model.Store, m *metrics.Metrics, log *slog.Logger) (*jwks.Resolver, error) {
	client, err := jwks.NewClient(s.JWT.CABundle, s.JWT.InsecureSkipVerify, os.ReadFile)
	if err != nil {
		return nil, err
	}
	r := &jwks.Resolver{Store: store, Client: client, Refresh: s.JWT.RefreshInterval,
		Logger: log.With("component", "jwks"), Metrics: jwks.NewMetrics(m.Registry)}
	go r.Run(ctx)
	return r, nil
}
