package envoygolden

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	secretservice "github.com/envoyproxy/go-control-plane/envoy/service/secret/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
)

// Server is an in-process go-control-plane server: ADS (state of the world)
// and SDS on one gRPC port of 127.0.0.1, and a record of the NACKs its
// clients sent. Listeners, route configs, clusters and endpoints come from a
// snapshot cache in ADS mode. Secrets come from a second cache, not in ADS
// mode: Envoy asks for each secret on its own (one SDS stream per secret of
// the sds-grpc cluster), and an ADS-mode cache answers only a request that
// names every resource of its type.
type Server struct {
	// Addr is host:port of the gRPC listener.
	Addr    string
	xds     cache.SnapshotCache
	secrets cache.SnapshotCache
	grpc    *grpc.Server

	mu    sync.Mutex
	nacks map[string]int // NACK message -> times received
}

// StartServer serves until ctx ends or Stop.
func StartServer(ctx context.Context) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("ADS server: %w", err)
	}
	s := &Server{
		Addr:    l.Addr().String(),
		xds:     cache.NewSnapshotCache(true, cache.IDHash{}, nil),
		secrets: cache.NewSnapshotCache(false, cache.IDHash{}, nil),
		grpc:    grpc.NewServer(),
	}
	mux := &cache.MuxCache{
		Classify: func(r *cache.Request) string {
			if r.GetTypeUrl() == resource.SecretType {
				return "secrets"
			}
			return "xds"
		},
		Caches: map[string]cache.Cache{"xds": s.xds, "secrets": s.secrets},
	}
	xds := server.NewServer(ctx, mux, server.CallbackFuncs{StreamRequestFunc: s.onRequest})
	discovery.RegisterAggregatedDiscoveryServiceServer(s.grpc, xds)
	secretservice.RegisterSecretDiscoveryServiceServer(s.grpc, xds)
	go func() { _ = s.grpc.Serve(l) }()
	go func() { <-ctx.Done(); s.grpc.Stop() }()
	return s, nil
}

// Stop ends the server and its streams.
func (s *Server) Stop() { s.grpc.Stop() }

// onRequest records a request that carries an error detail: a NACK, with
// Envoy's reason.
func (s *Server) onRequest(_ int64, req *discovery.DiscoveryRequest) error {
	if req.GetErrorDetail() == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.nacks == nil {
		s.nacks = map[string]int{}
	}
	s.nacks[fmt.Sprintf("NACK of %s [%s]: %s", shortType(req.GetTypeUrl()),
		strings.Join(req.GetResourceNames(), ", "), strings.TrimSpace(req.GetErrorDetail().GetMessage()))]++
	return nil
}

// NACKs returns the distinct NACKs received so far, with Envoy's messages
// and how often each came: go-control-plane answers a NACK with the same
// snapshot, so Envoy rejects it again and again.
func (s *Server) NACKs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.nacks))
	for _, m := range sortedKeys(s.nacks) {
		out = append(out, fmt.Sprintf("%s (x%d)", m, s.nacks[m]))
	}
	return out
}

// Serve sets the plan's resources as the snapshot for its node. The snapshot
// must be consistent (every route config and ClusterLoadAssignment
// referenced, none missing), or Envoy would wait for what never comes.
func (s *Server) Serve(ctx context.Context, p *Plan) error {
	res := map[resource.Type][]types.Resource{}
	for _, l := range p.Listeners {
		res[resource.ListenerType] = append(res[resource.ListenerType], l)
	}
	for _, r := range p.Routes {
		res[resource.RouteType] = append(res[resource.RouteType], r)
	}
	for _, c := range p.Clusters {
		res[resource.ClusterType] = append(res[resource.ClusterType], c)
	}
	for _, e := range p.Endpoints {
		res[resource.EndpointType] = append(res[resource.EndpointType], e)
	}
	snap, err := cache.NewSnapshot("1", res)
	if err != nil {
		return err
	}
	if err := snap.Consistent(); err != nil {
		return fmt.Errorf("case %s is not self-consistent: %w", p.Case, err)
	}
	if err := s.xds.SetSnapshot(ctx, p.NodeID, snap); err != nil {
		return err
	}
	if len(p.Secrets) == 0 {
		// No snapshot: a request for a secret waits, unanswered, as Envoy's
		// would on an agent that has no such certificate.
		return nil
	}
	secrets := map[resource.Type][]types.Resource{}
	for _, sec := range p.Secrets {
		secrets[resource.SecretType] = append(secrets[resource.SecretType], sec)
	}
	if snap, err = cache.NewSnapshot("1", secrets); err != nil {
		return err
	}
	return s.secrets.SetSnapshot(ctx, p.NodeID, snap)
}

func shortType(url string) string { return strings.TrimPrefix(url, resource.APITypePrefix) }
