package xds

import (
	"bytes"
	"context"
	"encoding/base64"
	"sync"
	"testing"
	"time"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/meshd/meshd/internal/ca"
	"github.com/meshd/meshd/internal/metrics"
	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/internal/testcerts"
	"github.com/meshd/meshd/translate"
)

// fakeGateways serves, in place of translate.Build, a gateway Output per
// namespace: a listener terminating TLS with kubernetes://gw (fetched over
// ADS), a cluster, and the namespace's secrets, which a test may rotate.
type fakeGateways struct {
	mu      sync.Mutex
	secrets map[string][]*tlsv3.Secret // by namespace
}

func (f *fakeGateways) set(ns string, secrets ...*tlsv3.Secret) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.secrets[ns] = secrets
}

func (f *fakeGateways) build(_ *translate.Index, sc model.Scope) *translate.Output {
	f.mu.Lock()
	defer f.mu.Unlock()
	const db = "outbound|5432||db.edge.svc.cluster.local"
	ts := &core.TransportSocket{Name: "envoy.transport_sockets.tls", ConfigType: &core.TransportSocket_TypedConfig{
		TypedConfig: mustAny(&tlsv3.DownstreamTlsContext{CommonTlsContext: &tlsv3.CommonTlsContext{
			TlsCertificateSdsSecretConfigs: []*tlsv3.SdsSecretConfig{{Name: "kubernetes://gw", SdsConfig: &core.ConfigSource{
				ResourceApiVersion: core.ApiVersion_V3, ConfigSourceSpecifier: &core.ConfigSource_Ads{Ads: &core.AggregatedConfigSource{}}}}},
		}}),
	}}
	return &translate.Output{
		Listeners: []*listener.Listener{{
			Name:    "0.0.0.0_8443",
			Address: &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{Address: "0.0.0.0", PortSpecifier: &core.SocketAddress_PortValue{PortValue: 8443}}}},
			FilterChains: []*listener.FilterChain{{TransportSocket: ts, Filters: []*listener.Filter{{Name: "envoy.filters.network.tcp_proxy",
				ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(&tcp.TcpProxy{StatPrefix: "db", ClusterSpecifier: &tcp.TcpProxy_Cluster{Cluster: db}})}}}}},
		}},
		Clusters: []*cluster.Cluster{{Name: db, ConnectTimeout: durationpb.New(time.Second),
			ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_STATIC},
			LoadAssignment:       &endpoint.ClusterLoadAssignment{ClusterName: db}}},
		Secrets: f.secrets[sc.Namespace],
	}
}

// fakeBuild makes the server's scopes the fake's (until the test ends).
func fakeBuild(t *testing.T) *fakeGateways {
	f := &fakeGateways{secrets: map[string][]*tlsv3.Secret{}}
	old := buildOutput
	buildOutput = f.build
	t.Cleanup(func() { buildOutput = old })
	return f
}

func certSecret(name string, c *testcerts.Cert) *tlsv3.Secret {
	return &tlsv3.Secret{Name: name, Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
		CertificateChain: &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: c.CertPEM}},
		PrivateKey:       &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: c.KeyPEM}},
	}}}
}

// sotwClient is a state-of-the-world stream that ACKs what it is asked to.
type sotwClient struct {
	t      *testing.T
	stream discovery.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	rx     <-chan *discovery.DiscoveryResponse
	names  map[string][]string // subscribed names per type
}

func newSotwClient(t *testing.T, conn *grpc.ClientConn, nodeID, ns string) *sotwClient {
	ctx, cancel := context.WithCancel(asNamespace(ns))
	t.Cleanup(cancel)
	stream, err := discovery.NewAggregatedDiscoveryServiceClient(conn).StreamAggregatedResources(ctx)
	require.NoError(t, err)
	c := &sotwClient{t: t, stream: stream, rx: receiver(stream), names: map[string][]string{}}
	require.NoError(t, stream.Send(&discovery.DiscoveryRequest{Node: node(t, nodeID, ns), TypeUrl: resourcev3.ClusterType}))
	return c
}

// subscribe asks for typeURL (names nil: wildcard).
func (c *sotwClient) subscribe(typeURL string, names ...string) {
	c.names[typeURL] = names
	require.NoError(c.t, c.stream.Send(&discovery.DiscoveryRequest{TypeUrl: typeURL, ResourceNames: names}))
}

// recvAndACK receives one response, ACKs it and returns it.
func (c *sotwClient) recvAndACK() *discovery.DiscoveryResponse {
	c.t.Helper()
	r, ok := recvWithin(c.t, c.rx, 5*time.Second)
	require.True(c.t, ok, "no response")
	require.NoError(c.t, c.stream.Send(&discovery.DiscoveryRequest{TypeUrl: r.TypeUrl, VersionInfo: r.VersionInfo,
		ResponseNonce: r.Nonce, ResourceNames: c.names[r.TypeUrl]}))
	return r
}

// initial receives and ACKs the first response of each type it asked for.
func (c *sotwClient) initial(types ...string) map[string]*discovery.DiscoveryResponse {
	c.t.Helper()
	got := map[string]*discovery.DiscoveryResponse{}
	for len(got) < len(types) {
		r := c.recvAndACK()
		got[r.TypeUrl] = r
	}
	return got
}

func secretsIn(t *testing.T, r *discovery.DiscoveryResponse) []*tlsv3.Secret {
	var out []*tlsv3.Secret
	for _, a := range r.Resources {
		s := &tlsv3.Secret{}
		require.NoError(t, a.UnmarshalTo(s))
		out = append(out, s)
	}
	return out
}

// TestSDSRotationPushesOnlySDS: a gateway's secret rotated (new content,
// listeners and clusters unchanged) is sent to its streams over SDS
// alone; listeners and clusters are not sent again.
func TestSDSRotationPushesOnlySDS(t *testing.T) {
	f := fakeBuild(t)
	v1, v2 := testcerts.NewLeaf("v1", nil, testcerts.Options{}), testcerts.NewLeaf("v2", nil, testcerts.Options{})
	f.set("edge", certSecret("kubernetes://gw", v1))
	s, conn := startSecureServer(t, testStore(t))
	c := newSotwClient(t, conn, "router~10.1.0.9~gw-1.edge~edge.svc.cluster.local", "edge")
	c.subscribe(resourcev3.ListenerType)
	c.subscribe(resourcev3.SecretType, "kubernetes://gw")
	first := c.initial(resourcev3.ClusterType, resourcev3.ListenerType, resourcev3.SecretType)
	got := secretsIn(t, first[resourcev3.SecretType])
	require.Len(t, got, 1)
	assert.Equal(t, v1.CertPEM, got[0].GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	require.Eventually(t, func() bool { return s.Proxies()[0].Types["sds"].Synced() }, 5*time.Second, 10*time.Millisecond,
		"/debug/syncz shows sds")

	f.set("edge", certSecret("kubernetes://gw", v2))
	require.True(t, s.ForcePush())
	r := c.recvAndACK()
	require.Equal(t, resourcev3.SecretType, r.TypeUrl, "only SDS is sent")
	got = secretsIn(t, r)
	require.Len(t, got, 1)
	assert.Equal(t, v2.CertPEM, got[0].GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	assert.NotEqual(t, first[resourcev3.SecretType].VersionInfo, r.VersionInfo)
	_, more := recvWithin(t, c.rx, 300*time.Millisecond)
	assert.False(t, more, "listeners and clusters are unchanged: nothing else is sent")
	assert.Equal(t, 2.0, testutil.ToFloat64(s.m.Pushes.WithLabelValues("sds")), "metrics label sds")

	// The same content again (a Secret edit that changes nothing) sends nothing.
	f.set("edge", certSecret("kubernetes://gw", v2))
	require.True(t, s.ForcePush())
	_, more = recvWithin(t, c.rx, 300*time.Millisecond)
	assert.False(t, more)
}

// TestSDSServesOnlyTheScopesSecrets: a proxy of namespace edge-b asking
// for any secret name — its own, one that only edge-a has, edge-a's by
// explicit namespace — is sent only what its scope's Output holds, never
// edge-a's; a proxy of edge-a connected at the same time gets edge-a's.
// Over state of the world and delta alike.
func TestSDSServesOnlyTheScopesSecrets(t *testing.T) {
	f := fakeBuild(t)
	certA, certB := testcerts.NewLeaf("a", nil, testcerts.Options{}), testcerts.NewLeaf("b", nil, testcerts.Options{})
	f.set("edge-a", certSecret("kubernetes://gw", certA), certSecret("kubernetes://only-a", certA))
	f.set("edge-b", certSecret("kubernetes://gw", certB))
	_, conn := startSecureServer(t, testStore(t))
	names := []string{"kubernetes://gw", "kubernetes://only-a", "kubernetes://edge-a/gw"}

	a := newSotwClient(t, conn, "router~10.1.0.8~gw-1.edge-a~edge-a.svc.cluster.local", "edge-a")
	a.subscribe(resourcev3.SecretType, names...)
	b := newSotwClient(t, conn, "router~10.1.0.9~gw-1.edge-b~edge-b.svc.cluster.local", "edge-b")
	b.subscribe(resourcev3.SecretType, names...)
	gotA := secretsIn(t, a.initial(resourcev3.ClusterType, resourcev3.SecretType)[resourcev3.SecretType])
	gotB := secretsIn(t, b.initial(resourcev3.ClusterType, resourcev3.SecretType)[resourcev3.SecretType])
	assert.Len(t, gotA, 2)
	require.Len(t, gotB, 1)
	assert.Equal(t, "kubernetes://gw", gotB[0].Name)
	assert.Equal(t, certB.CertPEM, gotB[0].GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	_, more := recvWithin(t, b.rx, 300*time.Millisecond)
	assert.False(t, more)

	// Delta: the same.
	ctx, cancel := context.WithCancel(asNamespace("edge-b"))
	defer cancel()
	d, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	require.NoError(t, err)
	require.NoError(t, d.Send(&discovery.DeltaDiscoveryRequest{Node: node(t, "router~10.1.0.7~gw-2.edge-b~edge-b.svc.cluster.local", "edge-b"),
		TypeUrl: resourcev3.SecretType, ResourceNamesSubscribe: names}))
	resp, err := d.Recv()
	require.NoError(t, err)
	require.Len(t, resp.Resources, 1)
	assert.Equal(t, "kubernetes://gw", resp.Resources[0].Name)
	for _, r := range resp.Resources {
		assert.False(t, bytes.Contains(r.GetResource().GetValue(), certA.KeyPEM), "edge-a's key sent to edge-b")
		assert.False(t, bytes.Contains(r.GetResource().GetValue(), certA.CertPEM), "edge-a's certificate sent to edge-b")
	}
}

// TestSDSDeltaRotation: over delta, a rotation sends the secret alone.
func TestSDSDeltaRotation(t *testing.T) {
	f := fakeBuild(t)
	v1, v2 := testcerts.NewLeaf("v1", nil, testcerts.Options{}), testcerts.NewLeaf("v2", nil, testcerts.Options{})
	f.set("edge", certSecret("kubernetes://gw", v1))
	s, conn := startSecureServer(t, testStore(t))
	ctx, cancel := context.WithCancel(asNamespace("edge"))
	defer cancel()
	d, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	require.NoError(t, err)
	n := node(t, "router~10.1.0.9~gw-1.edge~edge.svc.cluster.local", "edge")
	for _, typ := range []string{resourcev3.ClusterType, resourcev3.ListenerType, resourcev3.SecretType} {
		sub := []string{"*"}
		if typ == resourcev3.SecretType {
			sub = []string{"kubernetes://gw"}
		}
		require.NoError(t, d.Send(&discovery.DeltaDiscoveryRequest{Node: n, TypeUrl: typ, ResourceNamesSubscribe: sub}))
		resp, err := d.Recv()
		require.NoError(t, err)
		require.Equal(t, typ, resp.TypeUrl)
		require.NoError(t, d.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: typ, ResponseNonce: resp.Nonce}))
	}
	f.set("edge", certSecret("kubernetes://gw", v2))
	require.True(t, s.ForcePush())
	recv := make(chan *discovery.DeltaDiscoveryResponse, 4)
	go func() {
		for {
			r, err := d.Recv()
			if err != nil {
				return
			}
			recv <- r
		}
	}()
	select {
	case r := <-recv:
		require.Equal(t, resourcev3.SecretType, r.TypeUrl)
		require.Len(t, r.Resources, 1)
		sec := &tlsv3.Secret{}
		require.NoError(t, r.Resources[0].GetResource().UnmarshalTo(sec))
		assert.Equal(t, v2.CertPEM, sec.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	case <-time.After(5 * time.Second):
		t.Fatal("no SDS update")
	}
	select {
	case r := <-recv:
		t.Fatalf("only SDS changed, got %s too", r.TypeUrl)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestConfigDumpRedactsPrivateKeys: /debug/config_dump shows a proxy's
// secrets, without their private keys.
func TestConfigDumpRedactsPrivateKeys(t *testing.T) {
	f := fakeBuild(t)
	c := testcerts.NewLeaf("gw", nil, testcerts.Options{})
	f.set("edge", certSecret("kubernetes://gw", c))
	s, conn := startSecureServer(t, testStore(t))
	cl := newSotwClient(t, conn, "router~10.1.0.9~gw-1.edge~edge.svc.cluster.local", "edge")
	cl.subscribe(resourcev3.SecretType, "kubernetes://gw")
	cl.initial(resourcev3.ClusterType, resourcev3.SecretType)
	dump, err := s.ConfigDump("gw-1.edge")
	require.NoError(t, err)
	sd := &adminv3.SecretsConfigDump{}
	require.NoError(t, dump.Configs[len(dump.Configs)-1].UnmarshalTo(sd))
	require.Len(t, sd.DynamicActiveSecrets, 1)
	sec := &tlsv3.Secret{}
	require.NoError(t, sd.DynamicActiveSecrets[0].Secret.UnmarshalTo(sec))
	assert.Equal(t, "[redacted]", sec.GetTlsCertificate().GetPrivateKey().GetInlineString())
	assert.Equal(t, c.CertPEM, sec.GetTlsCertificate().GetCertificateChain().GetInlineBytes())
	assert.NotEmpty(t, sd.DynamicActiveSecrets[0].VersionInfo)
	// As /debug/config_dump renders it: no private key anywhere.
	js, err := protojson.Marshal(dump)
	require.NoError(t, err)
	assert.NotContains(t, string(js), "PRIVATE KEY")
	assert.NotContains(t, string(js), base64.StdEncoding.EncodeToString(c.KeyPEM)[:40])
	assert.Contains(t, string(js), "[redacted]")
	// The served secret keeps its key.
	assert.Equal(t, c.KeyPEM, f.build(nil, model.Scope{Namespace: "edge"}).Secrets[0].GetTlsCertificate().GetPrivateKey().GetInlineBytes())
}

// TestSDSIsAPlainSelectType: a stream watching SDS stays on the plain
// select (no reflect.Select, no allocation per response).
func TestSDSIsAPlainSelectType(t *testing.T) {
	assert.GreaterOrEqual(t, knownIndex(resourcev3.SecretType), 0)
	assert.Equal(t, "sds", ShortType(resourcev3.SecretType))
}

// TestRedactSecretAllowList: only public material survives redaction.
func TestRedactSecretAllowList(t *testing.T) {
	secret := func(v string) *core.DataSource {
		return &core.DataSource{Specifier: &core.DataSource_InlineString{InlineString: v}}
	}
	cases := []*tlsv3.Secret{
		{Name: "a", Type: &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
			CertificateChain: secret("CHAIN"), PrivateKey: secret("KEY"), Password: secret("PASS")}}},
		{Name: "b", Type: &tlsv3.Secret_SessionTicketKeys{SessionTicketKeys: &tlsv3.TlsSessionTicketKeys{Keys: []*core.DataSource{secret("TICKET")}}}},
		{Name: "c", Type: &tlsv3.Secret_GenericSecret{GenericSecret: &tlsv3.GenericSecret{Secret: secret("GENERIC")}}},
		{Name: "d", Type: &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{TrustedCa: secret("CA")}}},
	}
	for _, s := range cases {
		js, err := protojson.Marshal(redactSecret(s))
		require.NoError(t, err)
		for _, hidden := range []string{"KEY", "PASS", "TICKET", "GENERIC"} {
			assert.NotContains(t, string(js), `"`+hidden+`"`, "secret %s", s.Name)
		}
	}
	js, _ := protojson.Marshal(redactSecret(cases[0]))
	assert.Contains(t, string(js), "CHAIN", "the certificate chain is public")
	js, _ = protojson.Marshal(redactSecret(cases[3]))
	assert.Contains(t, string(js), "CA", "a validation context is public")
	assert.Equal(t, "KEY", cases[0].GetTlsCertificate().GetPrivateKey().GetInlineString(), "the original is untouched")
}

// startSecureServer is startServer with the secure port's authentication:
// a stream carrying asNamespace(ns)'s token is of service account ns/gw.
func startSecureServer(t *testing.T, store *model.Store) (*Server, *grpc.ClientConn) {
	t.Helper()
	authn, err := ca.ParseStaticTokensString("edge edge gw\nedge-a edge-a gw\nedge-b edge-b gw\n")
	require.NoError(t, err)
	return startServerWith(t, store, grpc.ChainStreamInterceptor(StreamAuth(authn, metrics.New().AuthFailures)))
}

// asNamespace is a context whose calls carry the test token of ns.
func asNamespace(ns string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+ns)
}

// TestSDSNotSentWithoutIdentity: on a stream without an authenticated
// identity (the plaintext port) SDS is not answered, over state of the
// world and delta, while the stream's other types are; the refusal is
// counted.
func TestSDSNotSentWithoutIdentity(t *testing.T) {
	f := fakeBuild(t)
	f.set("edge", certSecret("kubernetes://gw", testcerts.NewLeaf("v1", nil, testcerts.Options{})))
	s, conn := startServer(t, testStore(t))
	c := newSotwClient(t, conn, "router~10.1.0.9~gw-1.edge~edge.svc.cluster.local", "edge")
	c.subscribe(resourcev3.SecretType, "kubernetes://gw")
	c.subscribe(resourcev3.ListenerType)
	got := map[string]bool{}
	for i := 0; i < 2; i++ {
		got[c.recvAndACK().TypeUrl] = true
	}
	assert.Equal(t, map[string]bool{resourcev3.ClusterType: true, resourcev3.ListenerType: true}, got)
	_, more := recvWithin(t, c.rx, 300*time.Millisecond)
	assert.False(t, more, "no secret is sent")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := discovery.NewAggregatedDiscoveryServiceClient(conn).DeltaAggregatedResources(ctx)
	require.NoError(t, err)
	n := node(t, "router~10.1.0.8~gw-2.edge~edge.svc.cluster.local", "edge")
	require.NoError(t, d.Send(&discovery.DeltaDiscoveryRequest{Node: n, TypeUrl: resourcev3.SecretType,
		ResourceNamesSubscribe: []string{"kubernetes://gw"}}))
	require.NoError(t, d.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resourcev3.ClusterType, ResourceNamesSubscribe: []string{"*"}}))
	resp, err := d.Recv()
	require.NoError(t, err)
	assert.Equal(t, resourcev3.ClusterType, resp.TypeUrl, "the delta stream goes on without SDS")
	assert.Equal(t, 2.0, testutil.ToFloat64(s.m.AuthFailures.WithLabelValues("secrets_unauthenticated")))
}
