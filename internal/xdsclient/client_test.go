package xdsclient

import (
	"net"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// fakeADS is a scripted ADS server: it answers each subscription request
// with the resources of its type and passes every request to the test.
type fakeADS struct {
	discovery.UnimplementedAggregatedDiscoveryServiceServer
	resources map[string][]proto.Message // type URL → resources
	bad       map[string]bool            // type URLs answered with an undecodable resource
	reqs      chan *discovery.DiscoveryRequest
}

func (f *fakeADS) StreamAggregatedResources(s discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	nonce := 0
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		f.reqs <- req
		if req.GetResponseNonce() != "" {
			continue // an ACK or NACK: nothing new to send
		}
		nonce++
		resp := &discovery.DiscoveryResponse{TypeUrl: req.GetTypeUrl(), VersionInfo: "v1", Nonce: string(rune('a' + nonce))}
		for _, m := range f.resources[req.GetTypeUrl()] {
			a, _ := anypb.New(m)
			resp.Resources = append(resp.Resources, a)
		}
		if f.bad[req.GetTypeUrl()] {
			resp.Resources = append(resp.Resources, &anypb.Any{TypeUrl: req.GetTypeUrl(), Value: []byte{0xff, 0xff}})
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

// serve runs f (a fake ADS server, either protocol) on a loopback port and
// returns a connection to it.
func serve(t *testing.T, f discovery.AggregatedDiscoveryServiceServer) *grpc.ClientConn {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := grpc.NewServer()
	discovery.RegisterAggregatedDiscoveryServiceServer(g, f)
	go func() { _ = g.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close(); g.Stop() })
	return conn
}

func mesh() map[string][]proto.Message {
	mgr, _ := anypb.New(&hcm.HttpConnectionManager{RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{RouteConfigName: "8080"}}})
	return map[string][]proto.Message{
		resourcev3.ClusterType: {
			&cluster.Cluster{Name: "outbound|8080||a", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS}},
			&cluster.Cluster{Name: "outbound|8080|v1|a", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
				EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{ServiceName: "outbound|8080|v1|a~x"}},
			&cluster.Cluster{Name: "PassthroughCluster", ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_ORIGINAL_DST}},
		},
		resourcev3.ListenerType: {&listener.Listener{Name: "0.0.0.0_8080", FilterChains: []*listener.FilterChain{{
			Filters: []*listener.Filter{{Name: "hcm", ConfigType: &listener.Filter_TypedConfig{TypedConfig: mgr}}},
		}}}},
		resourcev3.EndpointType: {
			&endpoint.ClusterLoadAssignment{ClusterName: "outbound|8080||a"},
			&endpoint.ClusterLoadAssignment{ClusterName: "outbound|8080|v1|a~x"},
		},
		resourcev3.RouteType: {&route.RouteConfiguration{Name: "8080"}},
	}
}

// next returns the next request the server saw.
func next[R any](t *testing.T, ch chan R) R {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no request within 5s")
		var none R
		return none
	}
}

// TestFollowsSubscriptionsAndACKs: wildcard CDS and LDS first, then the EDS
// names the clusters reference (service_name when set) and the RDS names the
// listeners reference; every response is ACKed with its version and nonce.
func TestFollowsSubscriptionsAndACKs(t *testing.T) {
	f := &fakeADS{resources: mesh(), reqs: make(chan *discovery.DiscoveryRequest, 64)}
	c, err := Start(serve(t, f), "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", map[string]any{"NAMESPACE": "ns"})
	require.NoError(t, err)
	defer c.Close()

	byType := map[string][]*discovery.DiscoveryRequest{}
	for len(byType[resourcev3.EndpointType]) < 2 || len(byType[resourcev3.RouteType]) < 2 ||
		len(byType[resourcev3.ClusterType]) < 2 || len(byType[resourcev3.ListenerType]) < 2 {
		r := next(t, f.reqs)
		byType[r.GetTypeUrl()] = append(byType[r.GetTypeUrl()], r)
	}
	first := byType[resourcev3.ClusterType][0]
	assert.Equal(t, "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", first.GetNode().GetId())
	assert.Empty(t, first.GetResourceNames(), "CDS is wildcard")
	assert.Empty(t, byType[resourcev3.ListenerType][0].GetResourceNames(), "LDS is wildcard")
	assert.Equal(t, []string{"outbound|8080|v1|a~x", "outbound|8080||a"}, byType[resourcev3.EndpointType][0].GetResourceNames())
	assert.Equal(t, []string{"8080"}, byType[resourcev3.RouteType][0].GetResourceNames())
	for typ, reqs := range byType {
		ack := reqs[1]
		assert.Equal(t, "v1", ack.GetVersionInfo(), typ)
		assert.NotEmpty(t, ack.GetResponseNonce(), typ)
		assert.Nil(t, ack.GetErrorDetail(), typ)
	}
	require.Eventually(t, func() bool { return c.Stats()["rds"].Responses == 1 }, 5*time.Second, 10*time.Millisecond)
	st := c.Stats()
	assert.Equal(t, []string{"PassthroughCluster", "outbound|8080|v1|a", "outbound|8080||a"}, st["cds"].Names)
	assert.Equal(t, []string{"outbound|8080|v1|a~x", "outbound|8080||a"}, st["eds"].Names)
	for _, typ := range Types {
		assert.Equal(t, 1, st[typ].Responses, typ)
		assert.Positive(t, st[typ].Bytes, typ)
		assert.Equal(t, "v1", st[typ].Version, typ)
	}
}

// TestNACKsWhatItCannotDecode: a response with an undecodable resource is
// NACKed with an error detail and the previous version (none yet).
func TestNACKsWhatItCannotDecode(t *testing.T) {
	f := &fakeADS{resources: mesh(), bad: map[string]bool{resourcev3.ClusterType: true}, reqs: make(chan *discovery.DiscoveryRequest, 64)}
	c, err := Start(serve(t, f), "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", map[string]any{"NAMESPACE": "ns"})
	require.NoError(t, err)
	defer c.Close()
	for {
		r := next(t, f.reqs)
		if r.GetTypeUrl() != resourcev3.ClusterType || r.GetResponseNonce() == "" {
			continue
		}
		require.NotNil(t, r.GetErrorDetail(), "an undecodable cluster must be NACKed")
		assert.Contains(t, r.GetErrorDetail().GetMessage(), "cluster")
		assert.Empty(t, r.GetVersionInfo(), "a NACK carries the last accepted version")
		break
	}
	require.Eventually(t, func() bool { return c.Stats()["cds"].Nacks == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Empty(t, c.Stats()["cds"].Names)
	assert.Nil(t, c.Err(), "a NACK does not end the stream")
}

// TestHoldsOnlySubscribed: an assignment a state-of-the-world EDS response
// carries without the client having subscribed to it is not held.
func TestHoldsOnlySubscribed(t *testing.T) {
	res := mesh()
	res[resourcev3.EndpointType] = append(res[resourcev3.EndpointType], &endpoint.ClusterLoadAssignment{ClusterName: "outbound|9090||unasked"})
	f := &fakeADS{resources: res, reqs: make(chan *discovery.DiscoveryRequest, 64)}
	c, err := Start(serve(t, f), "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", map[string]any{"NAMESPACE": "ns"})
	require.NoError(t, err)
	defer c.Close() // the few requests fit in f.reqs' buffer
	require.Eventually(t, func() bool { return c.Stats()["eds"].Responses == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, []string{"outbound|8080|v1|a~x", "outbound|8080||a"}, c.Stats()["eds"].Names)
	assert.False(t, c.Holds("eds", "outbound|9090||unasked"))
}
