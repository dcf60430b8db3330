package xdsclient

import (
	"context"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// fakeDelta is a scripted delta ADS server: it answers each subscription
// with the resources asked for (all of them for a wildcard), passes every
// request to the test, and sends whatever the test puts on push.
type fakeDelta struct {
	discovery.UnimplementedAggregatedDiscoveryServiceServer
	resources map[string][]proto.Message
	bad       map[string]bool
	reqs      chan *discovery.DeltaDiscoveryRequest
	push      chan *discovery.DeltaDiscoveryResponse
}

func nameOf(m proto.Message) string {
	switch r := m.(type) {
	case *cluster.Cluster:
		return r.GetName()
	case *listener.Listener:
		return r.GetName()
	case *endpoint.ClusterLoadAssignment:
		return r.GetClusterName()
	case *route.RouteConfiguration:
		return r.GetName()
	}
	return ""
}

func deltaResource(m proto.Message) *discovery.Resource {
	a, _ := anypb.New(m)
	return &discovery.Resource{Name: nameOf(m), Version: "1", Resource: a}
}

func (f *fakeDelta) DeltaAggregatedResources(s discovery.AggregatedDiscoveryService_DeltaAggregatedResourcesServer) error {
	in := make(chan *discovery.DeltaDiscoveryRequest)
	go func() {
		defer close(in)
		for {
			req, err := s.Recv()
			if err != nil {
				return
			}
			in <- req
		}
	}()
	nonce := 0
	for {
		var resp *discovery.DeltaDiscoveryResponse
		select {
		case req, ok := <-in:
			if !ok {
				return nil
			}
			f.reqs <- req
			if req.GetResponseNonce() != "" || (len(req.GetResourceNamesSubscribe()) == 0 && req.GetNode() == nil) {
				continue // an ACK, NACK or pure unsubscription
			}
			want := map[string]bool{}
			for _, n := range req.GetResourceNamesSubscribe() {
				want[n] = true
			}
			resp = &discovery.DeltaDiscoveryResponse{TypeUrl: req.GetTypeUrl(), SystemVersionInfo: "v1"}
			for _, m := range f.resources[req.GetTypeUrl()] {
				if len(want) == 0 || want[nameOf(m)] {
					resp.Resources = append(resp.Resources, deltaResource(m))
				}
			}
			if f.bad[req.GetTypeUrl()] {
				resp.Resources = append(resp.Resources, &discovery.Resource{Name: "bad",
					Resource: &anypb.Any{TypeUrl: req.GetTypeUrl(), Value: []byte{0xff, 0xff}}})
			}
		case resp = <-f.push:
		}
		nonce++
		resp.Nonce = strconv.Itoa(nonce)
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

// TestDeltaFollowsSubscriptionsAndACKs: on a delta stream the client opens
// wildcard CDS and LDS with its node, subscribes to the EDS and RDS names
// they reference, ACKs every response by nonce, and unsubscribes from a
// ClusterLoadAssignment when its cluster is removed.
func TestDeltaFollowsSubscriptionsAndACKs(t *testing.T) {
	f := &fakeDelta{resources: mesh(), reqs: make(chan *discovery.DeltaDiscoveryRequest, 64),
		push: make(chan *discovery.DeltaDiscoveryResponse)}
	c, err := StartWith(serve(t, f), "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local",
		map[string]any{"NAMESPACE": "ns"}, Options{Delta: true})
	require.NoError(t, err)
	defer c.Close()

	byType := map[string][]*discovery.DeltaDiscoveryRequest{}
	for len(byType[resourcev3.EndpointType]) < 2 || len(byType[resourcev3.RouteType]) < 2 ||
		len(byType[resourcev3.ClusterType]) < 2 || len(byType[resourcev3.ListenerType]) < 2 {
		r := next(t, f.reqs)
		byType[r.GetTypeUrl()] = append(byType[r.GetTypeUrl()], r)
	}
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.ListenerType} {
		assert.Equal(t, "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", byType[typ][0].GetNode().GetId(), typ)
		assert.Empty(t, byType[typ][0].GetResourceNamesSubscribe(), "wildcard %s", typ)
	}
	assert.Equal(t, []string{"outbound|8080|v1|a~x", "outbound|8080||a"}, byType[resourcev3.EndpointType][0].GetResourceNamesSubscribe())
	assert.Equal(t, []string{"8080"}, byType[resourcev3.RouteType][0].GetResourceNamesSubscribe())
	for typ, reqs := range byType {
		assert.NotEmpty(t, reqs[1].GetResponseNonce(), typ)
		assert.Nil(t, reqs[1].GetErrorDetail(), typ)
	}
	require.NoError(t, c.Wait(context.Background(), (*Client).Complete))
	assert.Equal(t, []string{"outbound|8080|v1|a~x", "outbound|8080||a"}, c.Stats()["eds"].Names)

	// The subset cluster goes: its assignment is unsubscribed and forgotten.
	f.push <- &discovery.DeltaDiscoveryResponse{TypeUrl: resourcev3.ClusterType, RemovedResources: []string{"outbound|8080|v1|a"}}
	var unsub *discovery.DeltaDiscoveryRequest
	for unsub == nil {
		if r := next(t, f.reqs); r.GetTypeUrl() == resourcev3.EndpointType {
			unsub = r
		}
	}
	assert.Equal(t, []string{"outbound|8080|v1|a~x"}, unsub.GetResourceNamesUnsubscribe())
	assert.Empty(t, unsub.GetResourceNamesSubscribe())
	st := c.Stats()
	assert.Equal(t, []string{"PassthroughCluster", "outbound|8080||a"}, st["cds"].Names)
	assert.Equal(t, []string{"outbound|8080||a"}, st["eds"].Names)
	assert.Equal(t, []string{"outbound|8080||a"}, c.Subscribed("eds"))
	assert.True(t, c.Complete())
}

// TestDeltaNACKs: an undecodable resource on a delta stream is NACKed with
// an error detail, counted, not held, and the stream goes on.
func TestDeltaNACKs(t *testing.T) {
	f := &fakeDelta{resources: mesh(), bad: map[string]bool{resourcev3.ListenerType: true},
		reqs: make(chan *discovery.DeltaDiscoveryRequest, 64), push: make(chan *discovery.DeltaDiscoveryResponse)}
	c, err := StartWith(serve(t, f), "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local",
		map[string]any{"NAMESPACE": "ns"}, Options{Delta: true})
	require.NoError(t, err)
	defer c.Close()
	for {
		r := next(t, f.reqs)
		if r.GetTypeUrl() != resourcev3.ListenerType || r.GetResponseNonce() == "" {
			continue
		}
		require.NotNil(t, r.GetErrorDetail(), "an undecodable listener must be NACKed")
		assert.Contains(t, r.GetErrorDetail().GetMessage(), "listener")
		break
	}
	require.Eventually(t, func() bool { return c.Stats()["lds"].Nacks == 1 }, 5*time.Second, 10*time.Millisecond)
	assert.Empty(t, c.Stats()["lds"].Names)
	assert.False(t, c.Complete(), "no listener accepted yet")
	assert.Nil(t, c.Err())
}

// TestOnResponseAndWait: the callback sees every response with its type,
// version, resource names and size after it was ACKed; Wait returns once
// the config is complete and honours its context.
func TestOnResponseAndWait(t *testing.T) {
	f := &fakeADS{resources: mesh(), reqs: make(chan *discovery.DiscoveryRequest, 64)}
	var mu sync.Mutex
	got := map[string]Response{}
	c, err := StartWith(serve(t, f), "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", map[string]any{"NAMESPACE": "ns"},
		Options{OnResponse: func(_ *Client, r Response) {
			mu.Lock()
			defer mu.Unlock()
			got[r.Type] = r
		}})
	require.NoError(t, err)
	defer c.Close()
	go func() { // drain the fake's request log
		for range f.reqs {
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, c.Wait(ctx, (*Client).Complete))
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 4 }, 5*time.Second, 10*time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.ElementsMatch(t, []string{"outbound|8080||a", "outbound|8080|v1|a", "PassthroughCluster"}, got["cds"].Names)
	assert.ElementsMatch(t, []string{"outbound|8080||a", "outbound|8080|v1|a~x"}, got["eds"].Names)
	assert.Equal(t, []string{"8080"}, got["rds"].Names)
	for typ, r := range got {
		assert.Equal(t, "v1", r.Version, typ)
		assert.Positive(t, r.Bytes, typ)
		assert.False(t, r.At.IsZero(), typ)
		assert.False(t, r.Nack, typ)
	}

	short, cancelShort := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancelShort()
	assert.ErrorIs(t, c.Wait(short, func(*Client) bool { return false }), context.DeadlineExceeded)
}

// TestWaitEndsWithTheStream: Wait returns the stream's error when the
// server goes away.
func TestWaitEndsWithTheStream(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	g := grpc.NewServer()
	f := &fakeADS{resources: mesh(), reqs: make(chan *discovery.DiscoveryRequest, 64)}
	discovery.RegisterAggregatedDiscoveryServiceServer(g, f)
	go func() { _ = g.Serve(lis) }()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	c, err := Start(conn, "sidecar~10.0.0.1~a.ns~ns.svc.cluster.local", map[string]any{"NAMESPACE": "ns"})
	require.NoError(t, err)
	defer c.Close()
	go func() {
		for range f.reqs {
		}
	}()
	require.NoError(t, c.Wait(context.Background(), (*Client).Complete))
	g.Stop()
	err = c.Wait(context.Background(), func(*Client) bool { return false })
	require.Error(t, err)
	assert.Equal(t, err, c.Err())
	<-c.Done()
}
