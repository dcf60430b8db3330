package translate

import (
	"slices"
	"testing"

	accesslog "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	grpclog "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/grpc/v3"
	fault "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
)

func edsCluster(name string) *cluster.Cluster {
	return &cluster.Cluster{
		Name: name, ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig: &cluster.Cluster_EdsClusterConfig{EdsConfig: adsConfigSource(), ServiceName: name},
	}
}

// The ALS incident: a listener naming a cluster the proxy lacks must never
// be served. Each dangling reference is reported by name.
func TestValidateRejectsDanglingReferences(t *testing.T) {
	good := &Output{
		Listeners: []*listener.Listener{
			outboundListener("0.0.0.0_80", "0.0.0.0", 80, httpFilter("p", "80")),
			outboundListener("10.0.0.1_5432", "10.0.0.1", 5432, tcpFilter("db", "outbound|5432||db")),
		},
		Routes:    []*route.RouteConfiguration{{Name: "80", VirtualHosts: []*route.VirtualHost{{Name: "a", Domains: []string{"a"}, Routes: []*route.Route{defaultRoute("outbound|80||a")}}}}},
		Clusters:  []*cluster.Cluster{edsCluster("outbound|80||a"), edsCluster("outbound|5432||db")},
		Endpoints: []*endpoint.ClusterLoadAssignment{{ClusterName: "outbound|80||a"}, {ClusterName: "outbound|5432||db"}},
	}
	require.NoError(t, Validate(good))

	cases := map[string]func(o *Output){
		`listener "0.0.0.0_80" references missing route "80"`: func(o *Output) { o.Routes = nil },
		`listener "10.0.0.1_5432" references missing cluster "outbound|5432||db"`: func(o *Output) {
			o.Clusters = o.Clusters[:1]
			o.Endpoints = o.Endpoints[:1]
		},
		`route "80" references missing cluster "outbound|80||a"`: func(o *Output) {
			o.Clusters = o.Clusters[1:]
			o.Endpoints = o.Endpoints[1:]
		},
		`EDS cluster "outbound|80||a" has no ClusterLoadAssignment`: func(o *Output) { o.Endpoints = o.Endpoints[1:] },
		`cluster "bad"`: func(o *Output) { o.Clusters = append(o.Clusters, &cluster.Cluster{Name: "bad", LbPolicy: 99}) },
		// Exactly the bank's outage: an access-log service the proxy has no cluster for.
		`listener "0.0.0.0_80" references missing cluster "outbound|9000||als.telemetry.svc.cluster.local"`: func(o *Output) {
			o.Listeners = slices.Clone(o.Listeners)
			l := proto.Clone(o.Listeners[0]).(*listener.Listener)
			setAccessLogs(l.FilterChains[0].Filters[0], []*accesslog.AccessLog{{Name: httpGrpcLogName,
				ConfigType: &accesslog.AccessLog_TypedConfig{TypedConfig: mustAny(&grpclog.HttpGrpcAccessLogConfig{
					CommonConfig: alsCommon("als", "", "outbound|9000||als.telemetry.svc.cluster.local", nil)})}}}, nil)
			o.Listeners[0] = l
		},
		// Envoy's checks that ValidateAll lacks.
		`domain "a" is in virtual hosts "a" and "b"`: func(o *Output) {
			rc := proto.Clone(o.Routes[0]).(*route.RouteConfiguration)
			rc.VirtualHosts = append(rc.VirtualHosts, &route.VirtualHost{Name: "b", Domains: []string{"b", "A"}, Routes: []*route.Route{defaultRoute("outbound|80||a")}})
			o.Routes = []*route.RouteConfiguration{rc}
		},
		`envoy.filters.http.router must be the last and only terminal filter`: func(o *Output) {
			o.Listeners = slices.Clone(o.Listeners)
			l := proto.Clone(o.Listeners[0]).(*listener.Listener)
			f := l.FilterChains[0].Filters[0]
			m := &hcm.HttpConnectionManager{}
			require.NoError(t, f.GetTypedConfig().UnmarshalTo(m))
			m.HttpFilters = append(m.HttpFilters, &hcm.HttpFilter{Name: faultFilterName,
				ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&fault.HTTPFault{})}})
			f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}
			o.Listeners[0] = l
		},
	}
	for want, mutate := range cases {
		t.Run(want, func(t *testing.T) {
			o := *good
			mutate(&o)
			assert.ErrorContains(t, Validate(&o), want)
		})
	}
}

func TestExportTo(t *testing.T) {
	cases := []struct {
		exportTo  []string
		owner, ns string
		want      bool
	}{
		{nil, "a", "b", true},
		{[]string{"*"}, "a", "b", true},
		{[]string{"."}, "a", "a", true},
		{[]string{"."}, "a", "b", false},
		{[]string{"~"}, "a", "a", false},
		{[]string{"b", "c"}, "a", "c", true},
		{[]string{"b"}, "a", "c", false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, exportedTo(c.exportTo, c.owner, c.ns), "%v owner=%s ns=%s", c.exportTo, c.owner, c.ns)
	}
}

func TestNamesAndHostResolution(t *testing.T) {
	assert.Equal(t, "outbound|8080|v1|a.ns.svc.cluster.local", ClusterName(8080, "v1", "a.ns.svc.cluster.local"))
	port, subset, host, ok := ParseClusterName("outbound|8080|v1|a.ns.svc.cluster.local")
	require.True(t, ok)
	assert.Equal(t, uint32(8080), port)
	assert.Equal(t, "v1", subset)
	assert.Equal(t, "a.ns.svc.cluster.local", host)
	_, _, _, ok = ParseClusterName("inbound|8080||")
	assert.False(t, ok)
	assert.Equal(t, "a.ns.svc.cluster.local", resolveHost("a", "ns", "cluster.local"))
	assert.Equal(t, "a.other.svc.cluster.local", resolveHost("a.other", "ns", "cluster.local"))
	assert.Equal(t, "core.bank.example", resolveHost("core.bank.example", "ns", "cluster.local"))
	assert.Equal(t, "*.example.com", resolveHost("*.example.com", "ns", "cluster.local"))

	svc := &model.Service{Hostname: "a.ns.svc.cluster.local", Name: "a", Namespace: "ns", Origin: model.KindService}
	assert.Equal(t, []string{"a.ns.svc.cluster.local", "a.ns.svc", "a.ns", "a"}, hostNames(svc, "ns"))
	assert.Equal(t, []string{"a.ns.svc.cluster.local", "a.ns.svc", "a.ns"}, hostNames(svc, "other"))
}

// Build is deterministic: the same snapshot gives identical output, which is
// what makes versions stable across restarts and replicas.
func TestBuildIsDeterministic(t *testing.T) {
	st := model.NewStore()
	var changes []model.Change
	for _, n := range []string{"c", "a", "b"} {
		changes = append(changes, model.Change{Kind: model.KindService, Namespace: "ns", Name: n, Object: &model.Service{
			Hostname: n + ".ns.svc.cluster.local", Name: n, Namespace: "ns", Origin: model.KindService,
			Ports: []model.Port{{Name: "http", Port: 80, Protocol: model.ProtocolHTTP}, {Name: "grpc", Port: 90, Protocol: model.ProtocolGRPC}},
		}})
	}
	snap := st.Apply(changes)
	sc := model.Scope{Type: model.SidecarProxy, Namespace: "ns"}
	a := Build(NewIndex(snap, Options{}), sc)
	for i := 0; i < 5; i++ {
		b := Build(NewIndex(snap, Options{}), sc)
		require.Equal(t, len(a.Clusters), len(b.Clusters))
		for j := range a.Clusters {
			assert.Equal(t, a.Clusters[j].Name, b.Clusters[j].Name)
			ab, err := deterministic.Marshal(a.Clusters[j])
			require.NoError(t, err)
			bb, err := deterministic.Marshal(b.Clusters[j])
			require.NoError(t, err)
			assert.Equal(t, ab, bb)
		}
	}
	require.NoError(t, Validate(a))
}

// TestValidateSplit: validating a view once plus each scope's own resources
// finds what Validate finds on the merged Output.
func TestValidateSplit(t *testing.T) {
	x := &Index{clas: map[string]*endpoint.ClusterLoadAssignment{
		"outbound|80||a": {ClusterName: "outbound|80||a"}, "outbound|5432||db": {ClusterName: "outbound|5432||db"},
	}}
	l80 := outboundListener("0.0.0.0_80", "0.0.0.0", 80, httpFilter("p", "80"))
	ldb := outboundListener("10.0.0.1_5432", "10.0.0.1", 5432, tcpFilter("db", "outbound|5432||db"))
	r80 := &route.RouteConfiguration{Name: "80", VirtualHosts: []*route.VirtualHost{{Name: "a", Domains: []string{"a"}, Routes: []*route.Route{defaultRoute("outbound|80||a")}}}}
	view := &Output{Listeners: []*listener.Listener{l80}, Routes: []*route.RouteConfiguration{r80}, Clusters: []*cluster.Cluster{edsCluster("outbound|80||a")}}
	own := func() *Output {
		return &Output{Listeners: []*listener.Listener{ldb}, Clusters: []*cluster.Cluster{edsCluster("outbound|5432||db")}}
	}

	out := merged(view, own())
	out.Endpoints = x.assignmentsFor(out.Clusters)
	require.NoError(t, Validate(out))
	require.NoError(t, ValidateIn(x, out))

	noDB := merged(view, &Output{Listeners: []*listener.Listener{ldb}})
	assert.ErrorContains(t, ValidateIn(x, noDB), `listener "10.0.0.1_5432" references missing cluster "outbound|5432||db"`)

	noRoute := merged(&Output{Listeners: []*listener.Listener{l80}, Clusters: view.Clusters}, own())
	assert.ErrorContains(t, ValidateIn(x, noRoute), `listener "0.0.0.0_80" references missing route "80"`, "the view's own problems are reported")

	delete(x.clas, "outbound|5432||db")
	assert.ErrorContains(t, ValidateIn(&Index{clas: x.clas}, merged(view, own())), `EDS cluster "outbound|5432||db" has no ClusterLoadAssignment`)
}
