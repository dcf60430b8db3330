package translate

import (
	"math"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	httpopts "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	xdstype "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// httpOptionsKey is the typed_extension_protocol_options key of HTTP upstream options.
const httpOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// defaultRingSize is Envoy's (and istiod's) default minimum ring size.
const defaultRingSize = 1024

// policyTarget is what applying a traffic policy needs to know about the
// cluster besides the policy.
type policyTarget struct {
	port   model.Port
	host   string
	subset string
	// sans are the identities an ISTIO_MUTUAL upstream must present.
	sans []string
}

// mergeTrafficPolicy returns the policy of one port, as istiod's
// MergeTrafficPolicy: the settings of override replace those of base field by
// field (load balancer, connection pool, outlier detection, TLS), then a
// port-level setting of override for port replaces all four (port-level
// settings do not inherit). base must already be merged for the port.
func mergeTrafficPolicy(base, override *networking.TrafficPolicy, port uint32) *networking.TrafficPolicy {
	if override == nil {
		return base
	}
	out := &networking.TrafficPolicy{}
	if base != nil {
		out.LoadBalancer, out.ConnectionPool = base.GetLoadBalancer(), base.GetConnectionPool()
		out.OutlierDetection, out.Tls = base.GetOutlierDetection(), base.GetTls()
	}
	if v := override.GetLoadBalancer(); v != nil {
		out.LoadBalancer = v
	}
	if v := override.GetConnectionPool(); v != nil {
		out.ConnectionPool = v
	}
	if v := override.GetOutlierDetection(); v != nil {
		out.OutlierDetection = v
	}
	if v := override.GetTls(); v != nil {
		out.Tls = v
	}
	for _, pl := range override.GetPortLevelSettings() {
		if pl.GetPort().GetNumber() == port && port != 0 {
			out.LoadBalancer, out.ConnectionPool = pl.GetLoadBalancer(), pl.GetConnectionPool()
			out.OutlierDetection, out.Tls = pl.GetOutlierDetection(), pl.GetTls()
			break
		}
	}
	return out
}

// clusterPolicy returns the traffic policy of one cluster: the rule's
// policy for the port, overridden by the subset's.
func clusterPolicy(r *destRule, subset *networking.Subset, port uint32) *networking.TrafficPolicy {
	if r == nil {
		return nil
	}
	tp := mergeTrafficPolicy(nil, r.spec.GetTrafficPolicy(), port)
	return mergeTrafficPolicy(tp, subset.GetTrafficPolicy(), port)
}

// applyTrafficPolicy sets a cluster's connection pool, outlier detection,
// load balancer and upstream TLS from tp, in istiod's order. grpc limits the
// result to what proxyless gRPC clients accept (see grpcCluster).
func applyTrafficPolicy(c *cluster.Cluster, tp *networking.TrafficPolicy, t policyTarget, grpc bool) {
	if !grpc {
		c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{defaultThresholds()}}
	}
	if tp == nil {
		return
	}
	applyConnectionPool(c, tp.GetConnectionPool(), t.port, grpc)
	applyOutlierDetection(c, tp.GetOutlierDetection(), grpc)
	applyLoadBalancer(c, tp.GetLoadBalancer(), tp.GetOutlierDetection() != nil, grpc)
	if !grpc {
		applyUpstreamTLS(c, tp.GetTls(), t)
	}
}

// defaultThresholds are istiod's circuit breaker defaults: effectively no
// limit, so that retries during pod churn are not cut at Envoy's default of 3.
func defaultThresholds() *cluster.CircuitBreakers_Thresholds {
	return &cluster.CircuitBreakers_Thresholds{
		MaxConnections:     wrapperspb.UInt32(math.MaxUint32),
		MaxPendingRequests: wrapperspb.UInt32(math.MaxUint32),
		MaxRequests:        wrapperspb.UInt32(math.MaxUint32),
		MaxRetries:         wrapperspb.UInt32(math.MaxUint32),
		TrackRemaining:     true,
	}
}

// applyConnectionPool maps connectionPool to circuit breaker thresholds (the
// bulkhead), connect timeout and HTTP connection options.
func applyConnectionPool(c *cluster.Cluster, cp *networking.ConnectionPoolSettings, p model.Port, grpc bool) {
	if cp == nil {
		return
	}
	if grpc {
		// gRPC reads max_requests of the DEFAULT priority only.
		if n := cp.GetHttp().GetHttp2MaxRequests(); n > 0 {
			c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{{
				MaxRequests: wrapperspb.UInt32(uint32(n)),
			}}}
		}
		return
	}
	th := defaultThresholds()
	if h := cp.GetHttp(); h != nil {
		setLimit(&th.MaxPendingRequests, h.GetHttp1MaxPendingRequests())
		setLimit(&th.MaxRequests, h.GetHttp2MaxRequests())
		setLimit(&th.MaxRetries, h.GetMaxRetries())
	}
	if t := cp.GetTcp(); t != nil {
		setLimit(&th.MaxConnections, t.GetMaxConnections())
		if d := t.GetConnectTimeout(); d != nil {
			c.ConnectTimeout = durationpb.New(d.AsDuration())
		}
		if ka := t.GetTcpKeepalive(); ka != nil {
			c.UpstreamConnectionOptions = &cluster.UpstreamConnectionOptions{TcpKeepalive: tcpKeepalive(ka)}
		}
	}
	c.CircuitBreakers = &cluster.CircuitBreakers{Thresholds: []*cluster.CircuitBreakers_Thresholds{th}}
	common := &core.HttpProtocolOptions{}
	if d := cp.GetHttp().GetIdleTimeout(); d != nil {
		common.IdleTimeout = durationpb.New(d.AsDuration())
	}
	if n := cp.GetHttp().GetMaxRequestsPerConnection(); n > 0 {
		common.MaxRequestsPerConnection = wrapperspb.UInt32(uint32(n))
	}
	if d := cp.GetTcp().GetMaxConnectionDuration(); d != nil {
		common.MaxConnectionDuration = durationpb.New(d.AsDuration())
	}
	if (common.IdleTimeout != nil || common.MaxRequestsPerConnection != nil || common.MaxConnectionDuration != nil) && p.Protocol.IsHTTP() {
		c.TypedExtensionProtocolOptions = httpProtocolOptions(p.Protocol, common)
	}
}

func setLimit(dst **wrapperspb.UInt32Value, v int32) {
	if v > 0 {
		*dst = wrapperspb.UInt32(uint32(v))
	}
}

// httpProtocolOptions returns upstream HTTP options: HTTP/2 for HTTP2 and
// gRPC ports, HTTP/1.1 otherwise, with common (connection) options.
func httpProtocolOptions(proto model.Protocol, common *core.HttpProtocolOptions) map[string]*anypb.Any {
	explicit := &httpopts.HttpProtocolOptions_ExplicitHttpConfig{
		ProtocolConfig: &httpopts.HttpProtocolOptions_ExplicitHttpConfig_HttpProtocolOptions{
			HttpProtocolOptions: &core.Http1ProtocolOptions{},
		},
	}
	if proto == model.ProtocolHTTP2 || proto == model.ProtocolGRPC {
		explicit.ProtocolConfig = &httpopts.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{
			Http2ProtocolOptions: &core.Http2ProtocolOptions{},
		}
	}
	opts := &httpopts.HttpProtocolOptions{
		CommonHttpProtocolOptions: common,
		UpstreamProtocolOptions:   &httpopts.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: explicit},
	}
	return map[string]*anypb.Any{httpOptionsKey: mustAny(opts)}
}

// applyOutlierDetection maps outlierDetection as istiod does: success-rate
// ejection off, consecutive 5xx / gateway errors enforced at 100% when set,
// and minHealthPercent as the healthy panic threshold. For gRPC, which only
// implements success-rate and failure-percentage ejection, only the timing
// fields and failurePercentageThreshold are kept.
func applyOutlierDetection(c *cluster.Cluster, od *networking.OutlierDetection, grpc bool) {
	if od == nil {
		return
	}
	out := &cluster.OutlierDetection{EnforcingSuccessRate: wrapperspb.UInt32(0)}
	if d := od.GetInterval(); d != nil {
		out.Interval = durationpb.New(d.AsDuration())
	}
	if d := od.GetBaseEjectionTime(); d != nil {
		out.BaseEjectionTime = durationpb.New(d.AsDuration())
	}
	if n := od.GetMaxEjectionPercent(); n > 0 {
		out.MaxEjectionPercent = wrapperspb.UInt32(uint32(n))
	}
	if v := od.GetFailurePercentageThreshold(); v != nil {
		out.FailurePercentageThreshold = wrapperspb.UInt32(v.GetValue())
		out.EnforcingFailurePercentage = wrapperspb.UInt32(100)
	}
	if grpc {
		c.OutlierDetection = out
		return
	}
	if v := od.GetConsecutive_5XxErrors(); v != nil {
		out.Consecutive_5Xx, out.EnforcingConsecutive_5Xx = enforced(v.GetValue())
	} else if n := od.GetConsecutiveErrors(); n > 0 { //nolint:staticcheck // deprecated, still honoured by istiod
		out.ConsecutiveGatewayFailure, out.EnforcingConsecutiveGatewayFailure = enforced(uint32(n))
		out.Consecutive_5Xx, out.EnforcingConsecutive_5Xx = enforced(0)
	}
	if v := od.GetConsecutiveGatewayErrors(); v != nil {
		out.ConsecutiveGatewayFailure, out.EnforcingConsecutiveGatewayFailure = enforced(v.GetValue())
	}
	if od.GetSplitExternalLocalOriginErrors() {
		out.SplitExternalLocalOriginErrors = true
		if v := od.GetConsecutiveLocalOriginFailures(); v != nil {
			out.ConsecutiveLocalOriginFailure, out.EnforcingConsecutiveLocalOriginFailure = enforced(v.GetValue())
		}
	}
	c.OutlierDetection = out
	if c.CommonLbConfig == nil {
		c.CommonLbConfig = &cluster.Cluster_CommonLbConfig{}
	}
	// istiod always sets it (0 disables Envoy's default panic mode at 50%).
	c.CommonLbConfig.HealthyPanicThreshold = &xdstype.Percent{Value: float64(od.GetMinHealthPercent())}
}

// enforced returns a threshold and its enforcement: 100% unless disabled (0).
func enforced(n uint32) (*wrapperspb.UInt32Value, *wrapperspb.UInt32Value) {
	e := uint32(0)
	if n > 0 {
		e = 100
	}
	return wrapperspb.UInt32(n), wrapperspb.UInt32(e)
}

// tcpKeepalive maps TCP keepalive settings; unset fields keep the OS default.
func tcpKeepalive(ka *networking.ConnectionPoolSettings_TCPSettings_TcpKeepalive) *core.TcpKeepalive {
	out := &core.TcpKeepalive{}
	if n := ka.GetProbes(); n > 0 {
		out.KeepaliveProbes = wrapperspb.UInt32(n)
	}
	if d := ka.GetTime(); d != nil {
		out.KeepaliveTime = wrapperspb.UInt32(uint32(d.AsDuration().Seconds()))
	}
	if d := ka.GetInterval(); d != nil {
		out.KeepaliveInterval = wrapperspb.UInt32(uint32(d.AsDuration().Seconds()))
	}
	return out
}
