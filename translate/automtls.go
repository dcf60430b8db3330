package translate

import (
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rawbuffer "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/raw_buffer/v3"
	"google.golang.org/protobuf/types/known/structpb"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// Auto mTLS, as istiod's (MeshConfig enableAutoMtls, default true;
// pilot/pkg/networking/core/cluster_tls.go buildAutoMtlsSettings): a
// cluster whose traffic policy sets no TLS sends Istio mTLS to the
// endpoints whose workloads have a sidecar, plaintext to the others. The
// endpoints say which they are: those of pods labelled
// security.istio.io/tlsMode=istio (the label Istio's injector adds) carry
// the transport socket match metadata tlsMode=istio, and the cluster's
// transport_socket_matches pick Istio's mTLS socket for them and raw
// bytes for the rest.
//
// The mTLS socket needs the workload certificate from Istio's agent (SDS
// over sds-grpc), so only scopes of proxies run by it (Scope.Agent)
// originate it; other sidecars (meshd bootstrap), gateways and proxyless
// gRPC keep plaintext, as before.

const (
	// tlsModeLabel is the pod label saying the workload has a sidecar.
	tlsModeLabel = "security.istio.io/tlsMode"
	// transportSocketMatchKey is Envoy's filter metadata namespace for
	// transport_socket_matches.
	transportSocketMatchKey = "envoy.transport_socket_match"
	tlsModeIstio            = "istio"
)

// autoMTLS reports whether the scope's clusters originate auto mTLS.
func (b *builder) autoMTLS() bool {
	return b.x.enableAutoMTLS && b.scope.Agent && !b.grpc && b.scope.Type == model.SidecarProxy
}

// applyAutoMTLS gives c istiod's two transport socket matches when the
// scope does auto mTLS and the traffic policy sets no TLS: tlsMode-istio
// (Istio mTLS, SNI and SANs as ISTIO_MUTUAL's) and tlsMode-disabled (plain).
func (b *builder) applyAutoMTLS(c *cluster.Cluster, tp *networking.TrafficPolicy, t policyTarget, svc *model.Service) {
	if !b.autoMTLS() || tp.GetTls() != nil || c.GetTransportSocket() != nil || c.GetType() == cluster.Cluster_ORIGINAL_DST {
		return
	}
	t.sans = b.x.identities(svc)
	ctx := istioMutualContext(&networking.ClientTLSSettings{Mode: networking.ClientTLSSettings_ISTIO_MUTUAL}, t)
	c.TransportSocketMatches = []*cluster.Cluster_TransportSocketMatch{
		{
			Name:            "tlsMode-" + tlsModeIstio,
			Match:           &structpb.Struct{Fields: map[string]*structpb.Value{"tlsMode": structpb.NewStringValue(tlsModeIstio)}},
			TransportSocket: &core.TransportSocket{Name: tlsSocketName, ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(ctx)}},
		},
		{
			Name:            "tlsMode-disabled",
			Match:           &structpb.Struct{},
			TransportSocket: &core.TransportSocket{Name: "envoy.transport_sockets.raw_buffer", ConfigType: &core.TransportSocket_TypedConfig{TypedConfig: mustAny(&rawbuffer.RawBuffer{})}},
		},
	}
}

// tlsModeMetadata is an endpoint's transport socket match metadata: its
// workload has a sidecar (tlsMode=istio), or nil.
func tlsModeMetadata(labels map[string]string) *core.Metadata {
	if labels[tlsModeLabel] != tlsModeIstio {
		return nil
	}
	return &core.Metadata{FilterMetadata: map[string]*structpb.Struct{
		transportSocketMatchKey: {Fields: map[string]*structpb.Value{"tlsMode": structpb.NewStringValue(tlsModeIstio)}},
	}}
}
