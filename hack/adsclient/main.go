// Command adsclient connects to an ADS server as one proxy, subscribes the
// way Envoy does (wildcard CDS and LDS, then the EDS and RDS names those
// reference; for --grpc, the listener names a gRPC client dials), ACKs every
// response and prints what it received. A debugging aid for `make run`:
//
//	go run ./hack/adsclient --server 127.0.0.1:15010 --namespace shop
//	go run ./hack/adsclient --grpc --listener ledger.bank.svc.cluster.local:50051 --namespace bank
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"
)

func main() {
	server := flag.String("server", "127.0.0.1:15010", "ADS server address")
	ns := flag.String("namespace", "default", "proxy namespace")
	grpcGen := flag.Bool("grpc", false, "act as a proxyless gRPC client (GENERATOR=grpc)")
	lis := flag.String("listener", "", "with --grpc: the host:port to resolve, as in xds:///host:port")
	wait := flag.Duration("timeout", 10*time.Second, "give up after this long")
	flag.Parse()
	if err := run(*server, *ns, *grpcGen, *lis, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "adsclient:", err)
		os.Exit(1)
	}
}

func run(server, ns string, grpcGen bool, lis string, wait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, err := grpc.NewClient(server, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	if err != nil {
		return err
	}
	md := map[string]any{"NAMESPACE": ns}
	if grpcGen {
		md["GENERATOR"] = "grpc"
	}
	meta, err := structpb.NewStruct(md)
	if err != nil {
		return err
	}
	node := &core.Node{Id: fmt.Sprintf("sidecar~10.0.0.1~adsclient.%s~%s.svc.cluster.local", ns, ns), Metadata: meta}
	s := &subscriber{stream: stream, node: node, names: map[string][]string{}, done: map[string]bool{}}
	if grpcGen {
		if lis == "" {
			return fmt.Errorf("--grpc needs --listener host:port")
		}
		if err := s.subscribe(resourcev3.ListenerType, []string{lis}); err != nil {
			return err
		}
	} else {
		for _, typ := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
			if err := s.subscribe(typ, nil); err != nil {
				return err
			}
		}
	}
	return s.loop()
}

type subscriber struct {
	stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node   *core.Node
	names  map[string][]string // subscribed names by type
	done   map[string]bool     // types that got a response
}

func (s *subscriber) subscribe(typ string, names []string) error {
	s.names[typ] = names
	req := &discovery.DiscoveryRequest{Node: s.node, TypeUrl: typ, ResourceNames: names}
	s.node = nil // sent once
	return s.stream.Send(req)
}

// loop prints and ACKs responses, following references, until every
// subscribed type has answered.
func (s *subscriber) loop() error {
	for {
		resp, err := s.stream.Recv()
		if err != nil {
			return err
		}
		refs, err := printResponse(resp)
		if err != nil {
			return err
		}
		typ := resp.TypeUrl
		s.done[typ] = true
		if err := s.stream.Send(&discovery.DiscoveryRequest{TypeUrl: typ, VersionInfo: resp.VersionInfo,
			ResponseNonce: resp.Nonce, ResourceNames: s.names[typ]}); err != nil {
			return err
		}
		for refType, names := range refs {
			if cur, ok := s.names[refType]; ok && cur == nil {
				continue // a wildcard subscription already covers every name
			}
			if len(names) > 0 && !equal(s.names[refType], names) {
				if err := s.subscribe(refType, names); err != nil {
					return err
				}
				s.done[refType] = false
			}
		}
		if s.complete() {
			return nil
		}
	}
}

func (s *subscriber) complete() bool {
	for typ := range s.names {
		if !s.done[typ] {
			return false
		}
	}
	return true
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sorted(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
