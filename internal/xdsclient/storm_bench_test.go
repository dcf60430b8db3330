package xdsclient

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// stormName is the name of service i's cluster, as istiod names it.
func stormName(i int) string {
	return fmt.Sprintf("outbound|8080||svc-%d.ns-%d.svc.cluster.local", i, i%50)
}

// stormVersion is a 64-hex-digit version, as meshd's content hashes.
func stormVersion(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// stormResponses are a connect storm's two big responses, encoded: n EDS
// clusters, then their n ClusterLoadAssignments of 10 endpoints, in name
// order as meshd sends them; delta responses (with 64-hex-digit versions),
// or state of the world ones if sotw is set.
func stormResponses(tb testing.TB, n int, sotw bool) (cds, eds []byte) {
	ads := &core.ConfigSource{ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}},
		ResourceApiVersion: core.ApiVersion_V3}
	cr := &discovery.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, SystemVersionInfo: "1", Nonce: "1"}
	er := &discovery.DeltaDiscoveryResponse{TypeUrl: resourcev3.EndpointType, SystemVersionInfo: "1", Nonce: "2"}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(stormName(a), stormName(b)) })
	for _, i := range order {
		name := stormName(i)
		md, _ := structpb.NewStruct(map[string]any{"services": []any{map[string]any{
			"host": fmt.Sprintf("svc-%d.ns-%d.svc.cluster.local", i, i%50), "name": fmt.Sprintf("svc-%d", i),
			"namespace": fmt.Sprintf("ns-%d", i%50)}}})
		c := &cluster.Cluster{Name: name, ConnectTimeout: durationpb.New(1e10),
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
			EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: ads, ServiceName: name},
			CircuitBreakers: &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{{
				MaxConnections: wrapperspb.UInt32(4294967295), MaxPendingRequests: wrapperspb.UInt32(4294967295),
				MaxRequests: wrapperspb.UInt32(4294967295), MaxRetries: wrapperspb.UInt32(4294967295)}}},
			Metadata: &core.Metadata{FilterMetadata: map[string]*structpb.Struct{"istio": md}}}
		cla := &endpoint.ClusterLoadAssignment{ClusterName: name}
		lle := &endpoint.LocalityLbEndpoints{Locality: &core.Locality{Region: "r1", Zone: "z1"}}
		for j := range 10 {
			lle.LbEndpoints = append(lle.LbEndpoints, &endpoint.LbEndpoint{
				HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{Address: &core.Address{
					Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
						Address: fmt.Sprintf("10.%d.%d.%d", i>>8, i&0xff, j+1), PortSpecifier: &core.SocketAddress_PortValue{PortValue: 8080}}}}}},
				LoadBalancingWeight: wrapperspb.UInt32(1)})
		}
		cla.Endpoints = []*endpoint.LocalityLbEndpoints{lle}
		for _, x := range []struct {
			r *discovery.DeltaDiscoveryResponse
			m proto.Message
		}{{cr, c}, {er, cla}} {
			a, err := anypb.New(x.m)
			if err != nil {
				tb.Fatal(err)
			}
			x.r.Resources = append(x.r.Resources, &discovery.Resource{Name: name, Version: stormVersion(name + x.r.TypeUrl), Resource: a})
		}
	}
	var msgs [2]proto.Message = [2]proto.Message{cr, er}
	if sotw {
		for i, r := range []*discovery.DeltaDiscoveryResponse{cr, er} {
			s := &discovery.DiscoveryResponse{TypeUrl: r.TypeUrl, VersionInfo: r.SystemVersionInfo, Nonce: r.Nonce}
			for _, x := range r.Resources {
				s.Resources = append(s.Resources, x.Resource)
			}
			msgs[i] = s
		}
	}
	var err error
	if cds, err = proto.Marshal(msgs[0]); err != nil {
		tb.Fatal(err)
	}
	if eds, err = proto.Marshal(msgs[1]); err != nil {
		tb.Fatal(err)
	}
	return cds, eds
}

// scripted is a stream (Req the requests, Resp the responses) that hands
// the client's codec the encoded responses in order (then io.EOF) and
// drops what the client sends.
type scripted[Req, Resp any] struct {
	grpc.ClientStream
	resps [][]byte
	codec codec
}

// RecvMsg decodes the next scripted response into m with the client's codec.
func (s *scripted[Req, Resp]) RecvMsg(m any) error {
	if len(s.resps) == 0 {
		return io.EOF
	}
	b := s.resps[0]
	s.resps = s.resps[1:]
	return s.codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, m)
}

// SendMsg drops a request.
func (s *scripted[Req, Resp]) SendMsg(any) error { return nil }

// Send drops a request.
func (s *scripted[Req, Resp]) Send(*Req) error { return nil }

// Recv is not used: the client receives with RecvMsg.
func (s *scripted[Req, Resp]) Recv() (*Resp, error) { return nil, io.EOF }

// BenchmarkStorm is one simulated proxy's share of a connect storm, delta
// (keeping versions or not) and state of the world: a fresh client receives, decodes, holds and
// ACKs 1,000 clusters, subscribes to their assignments, and receives
// those 1,000 ClusterLoadAssignments of 10 endpoints each, with an
// OnResponse hook that does what the load generator's does (count the
// resources, check Complete). The previous client stays alive, as the
// other proxies of a fleet do: the names it holds stay interned.
func BenchmarkStorm(b *testing.B) {
	for _, protocol := range []string{"delta", "delta+versions", "sotw"} {
		b.Run(protocol, func(b *testing.B) {
			cds, eds := stormResponses(b, 1000, protocol == "sotw")
			b.SetBytes(int64(len(cds) + len(eds)))
			b.ReportAllocs()
			opts := Options{Delta: protocol != "sotw", Versions: protocol == "delta+versions", OnResponse: func(c *Client, r Response) {
				_ = len(r.Names)
				c.Complete()
			}}
			var prev *Client
			for b.Loop() {
				resps := [][]byte{cds, eds}
				var tr transport = &sotw{stream: &scripted[discovery.DiscoveryRequest, discovery.DiscoveryResponse]{
					resps: resps, codec: testCodec()}}
				if opts.Delta {
					tr = &delta{stream: &scripted[discovery.DeltaDiscoveryRequest, discovery.DeltaDiscoveryResponse]{
						resps: resps, codec: testCodec()}}
				}
				c := newClient("sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", opts, tr, func() {})
				for range 2 {
					u, err := c.tr.recv()
					if err != nil {
						b.Fatal(err)
					}
					if err := c.handle(u); err != nil {
						b.Fatal(err)
					}
					responseBufs.Put(u.buf)
				}
				if len(c.Subscribed("eds")) != 1000 || !c.Holds("eds", stormName(999)) {
					b.Fatal("assignments not all held")
				}
				runtime.KeepAlive(prev) // alive until c holds the same names
				prev = c
			}
		})
	}
}
