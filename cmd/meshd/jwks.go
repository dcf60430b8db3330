package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/meshd/meshd/internal/config"
	"github.com/meshd/meshd/internal/jwks"
	"github.com/meshd/meshd/internal/metrics"
	"github.com/meshd/meshd/internal/model"
)

// startJWKS runs the JWKS resolver, which fetches RequestAuthentications'
// jwksUris into the Store, until ctx is done.
func startJWKS(ctx context.Context, s *config.Settings, store *model.Store, m *metrics.Metrics, log *slog.Logger) error {
	client, err := jwks.NewClient(s.JWT.CABundle, s.JWT.InsecureSkipVerify, os.ReadFile)
	if err != nil {
		return err
	}
	r := &jwks.Resolver{Store: store, Client: client, Refresh: s.JWT.RefreshInterval,
		Logger: log.With("component", "jwks"), Metrics: jwks.NewMetrics(m.Registry)}
	go r.Run(ctx)
	return nil
}
