package fleet

import (
	"context"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
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
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshd/meshd/internal/xdsclient"
)

// stream is what the fake server saw on one ADS stream.
type stream struct {
	node      string
	metadata  map[string]any
	acks      map[string]int // type URL → ACKs
	nacks     map[string]int
	subscribe map[string][]string // type URL → last names subscribed (eds, rds)
}

// fakeADS answers each subscription with its resources, can refuse the
// first stream of every node, and records what each stream sent.
type fakeADS struct {
	discovery.UnimplementedAggregatedDiscoveryServiceServer
	resources map[string][]proto.Message
	badCDS    bool
	refuse    bool // refuse each node's first stream with ResourceExhausted

	mu      sync.Mutex
	streams []*stream
	seen    map[string]bool
}

func (f *fakeADS) StreamAggregatedResources(s discovery.AggregatedDiscoveryService_StreamAggregatedResourcesServer) error {
	st := &stream{acks: map[string]int{}, nacks: map[string]int{}, subscribe: map[string][]string{}}
	nonce := 0
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		f.mu.Lock()
		if req.GetNode() != nil && st.node == "" {
			st.node, st.metadata = req.GetNode().GetId(), req.GetNode().GetMetadata().AsMap()
			if f.refuse && !f.seen[st.node] {
				f.seen[st.node] = true
				f.mu.Unlock()
				return status.Error(codes.ResourceExhausted, "too many new streams")
			}
			f.streams = append(f.streams, st)
		}
		switch {
		case req.GetResponseNonce() != "" && req.GetErrorDetail() != nil:
			st.nacks[req.GetTypeUrl()]++
		case req.GetResponseNonce() != "":
			st.acks[req.GetTypeUrl()]++
		default:
			st.subscribe[req.GetTypeUrl()] = req.GetResourceNames()
		}
		f.mu.Unlock()
		if req.GetResponseNonce() != "" {
			continue
		}
		nonce++
		resp := &discovery.DiscoveryResponse{TypeUrl: req.GetTypeUrl(), VersionInfo: "v1", Nonce: strconv.Itoa(nonce)}
		for _, m := range f.resources[req.GetTypeUrl()] {
			a, _ := anypb.New(m)
			resp.Resources = append(resp.Resources, a)
		}
		if f.badCDS && req.GetTypeUrl() == resourcev3.ClusterType {
			resp.Resources = append(resp.Resources, &anypb.Any{TypeUrl: resourcev3.ClusterType, Value: []byte{0xff}})
		}
		if err := s.Send(resp); err != nil {
			return err
		}
	}
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	n atomic.Int32
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

func serve(t *testing.T, f *fakeADS) (string, *countingListener) {
	return serveWith(t, func(g *grpc.Server) { discovery.RegisterAggregatedDiscoveryServiceServer(g, f) })
}

// serveWith serves on a loopback port what register registers.
func serveWith(t *testing.T, register func(*grpc.Server)) (string, *countingListener) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &countingListener{Listener: lis}
	g := grpc.NewServer()
	register(g)
	go func() { _ = g.Serve(cl) }()
	t.Cleanup(g.Stop)
	return lis.Addr().String(), cl
}

func mesh() map[string][]proto.Message {
	mgr, _ := anypb.New(&hcm.HttpConnectionManager{RouteSpecifier: &hcm.HttpConnectionManager_Rds{Rds: &hcm.Rds{RouteConfigName: "8080"}}})
	eds := &cluster.Cluster_Type{Type: cluster.Cluster_EDS}
	return map[string][]proto.Message{
		resourcev3.ClusterType: {
			&cluster.Cluster{Name: "outbound|8080||a.ns.svc.cluster.local", ClusterDiscoveryType: eds},
			&cluster.Cluster{Name: "outbound|8080||b.ns.svc.cluster.local", ClusterDiscoveryType: eds},
		},
		resourcev3.ListenerType: {&listener.Listener{Name: "0.0.0.0_8080", FilterChains: []*listener.FilterChain{{
			Filters: []*listener.Filter{{Name: "hcm", ConfigType: &listener.Filter_TypedConfig{TypedConfig: mgr}}},
		}}}},
		resourcev3.EndpointType: {
			&endpoint.ClusterLoadAssignment{ClusterName: "outbound|8080||a.ns.svc.cluster.local"},
			&endpoint.ClusterLoadAssignment{ClusterName: "outbound|8080||b.ns.svc.cluster.local"},
		},
		resourcev3.RouteType: {&route.RouteConfiguration{Name: "8080"}},
	}
}

func wait(t *testing.T, f *Fleet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, f.WaitConfigured(ctx))
}

// TestFleetConfiguresEveryProxy: 25 proxies on 3 shared connections, with
// istiod node IDs and NAMESPACE/LABELS metadata spread over namespaces,
// subscribe wildcard CDS/LDS then the referenced EDS/RDS names, ACK every
// type, and are reported configured with their arrivals.
func TestFleetConfiguresEveryProxy(t *testing.T) {
	f := &fakeADS{resources: mesh()}
	addr, lis := serve(t, f)
	var hooked atomic.Int32
	fl, err := Start(context.Background(), Options{Address: addr, Proxies: 25, StreamsPerConn: 10,
		Namespaces: []string{"shop", "bank"},
		Labels:     func(i int) map[string]string { return map[string]string{"app": "app-" + strconv.Itoa(i%3)} },
		OnResponse: func(*Proxy, xdsclient.Response) { hooked.Add(1) }})
	require.NoError(t, err)
	defer fl.Close()
	wait(t, fl)

	assert.EqualValues(t, 3, lis.n.Load(), "streams share connections, 10 per connection")
	assert.EqualValues(t, 25*4, hooked.Load(), "one response per type per proxy")
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, s := range f.streams {
			if len(s.acks) < 4 {
				return false
			}
		}
		return len(f.streams) == 25
	}, 5*time.Second, 10*time.Millisecond)
	f.mu.Lock()
	defer f.mu.Unlock()
	byNode := map[string]*stream{}
	for _, s := range f.streams {
		byNode[s.node] = s
	}
	for _, p := range fl.Proxies() {
		ns := []string{"shop", "bank"}[p.Index%2]
		s := byNode[NodeID(p.Index, ns)]
		require.NotNil(t, s, "proxy %d connected as %s", p.Index, NodeID(p.Index, ns))
		assert.Equal(t, ns, s.metadata["NAMESPACE"])
		assert.Equal(t, map[string]any{"app": "app-" + strconv.Itoa(p.Index%3)}, s.metadata["LABELS"])
		for _, typ := range []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.ListenerType, resourcev3.RouteType} {
			assert.Equal(t, 1, s.acks[typ], "proxy %d ACKs %s", p.Index, typ)
			assert.Zero(t, s.nacks[typ])
		}
		assert.Equal(t, []string{"outbound|8080||a.ns.svc.cluster.local", "outbound|8080||b.ns.svc.cluster.local"},
			s.subscribe[resourcev3.EndpointType], "EDS follows the clusters")
		assert.Equal(t, []string{"8080"}, s.subscribe[resourcev3.RouteType], "RDS follows the listeners")
		d, ok := p.ConfiguredAfter()
		assert.True(t, ok)
		assert.Positive(t, d)
		bytes, responses := Totals(p.Arrivals(0))
		assert.Equal(t, map[string]int{"cds": 1, "eds": 1, "lds": 1, "rds": 1}, responses)
		assert.Positive(t, bytes["cds"])
	}
	assert.Equal(t, "sidecar~10.0.0.1~pod-0.shop~shop.svc.cluster.local", NodeID(0, "shop"))
	assert.Equal(t, "10.0.1.0", NodeIP(255))
}

// TestFleetNACKsBadConfig: a response with an undecodable cluster is NACKed
// by every proxy, logged as a NACK, and the proxy is not configured.
func TestFleetNACKsBadConfig(t *testing.T) {
	f := &fakeADS{resources: mesh(), badCDS: true}
	addr, _ := serve(t, f)
	fl, err := Start(context.Background(), Options{Address: addr, Proxies: 5})
	require.NoError(t, err)
	defer fl.Close()
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		n := 0
		for _, s := range f.streams {
			n += s.nacks[resourcev3.ClusterType]
		}
		return n == 5
	}, 5*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond)
	assert.Zero(t, fl.Configured())
	for _, p := range fl.Proxies() {
		var nacked bool
		for _, a := range p.Arrivals(0) {
			nacked = nacked || (a.Type == "cds" && a.Nack)
		}
		assert.True(t, nacked, "proxy %d logs the NACK", p.Index)
		f.mu.Lock()
		for _, s := range f.streams {
			assert.Zero(t, s.acks[resourcev3.ClusterType], "nothing ACKs the bad clusters")
			assert.Empty(t, s.subscribe[resourcev3.EndpointType], "no EDS subscription from rejected clusters")
		}
		f.mu.Unlock()
	}
}

// TestFleetReconnects: a proxy whose stream is refused (as meshd's stream
// rate limit does) reconnects after a backoff and gets its config.
func TestFleetReconnects(t *testing.T) {
	f := &fakeADS{resources: mesh(), refuse: true, seen: map[string]bool{}}
	addr, _ := serve(t, f)
	fl, err := Start(context.Background(), Options{Address: addr, Proxies: 10, BackoffBase: 10 * time.Millisecond})
	require.NoError(t, err)
	defer fl.Close()
	wait(t, fl)
	for _, p := range fl.Proxies() {
		assert.Equal(t, 2, p.Attempts(), "proxy %d", p.Index)
		n, err := p.Failures()
		assert.Equal(t, 1, n)
		assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	}
}

// TestBackoff stays within Envoy's jittered bounds.
func TestBackoff(t *testing.T) {
	for attempt := range 40 {
		d := backoff(attempt, 500*time.Millisecond, 30*time.Second)
		assert.Positive(t, d)
		assert.LessOrEqual(t, d, min(500*time.Millisecond<<min(attempt, 10), 30*time.Second))
	}
}

func TestQuantiles(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	q := Quantiles(ds)
	assert.Equal(t, Summary{N: 100, P50: 50 * time.Millisecond, P90: 90 * time.Millisecond, P99: 99 * time.Millisecond,
		Max: 100 * time.Millisecond}, q)
	assert.Equal(t, Summary{}, Quantiles(nil))
}
