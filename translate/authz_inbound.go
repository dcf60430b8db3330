package translate

import (
	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbactcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	tcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/tcp_proxy/v3"

	"github.com/meshd/meshd/internal/model"
)

// The RBAC filters on a sidecar's inbound chains, where istiod puts them
// (listener_inbound.go, with builder.BuildHTTP / BuildTCP): on every chain
// of virtualInbound but the one closing traffic to 15006 itself, HTTP
// chains get envoy.filters.http.rbac before the router, TCP chains
// envoy.filters.network.rbac (stat prefix "tcp.") before tcp_proxy; DENY
// first, then ALLOW. With no policy, no filter.

const (
	rbacHTTPFilterName    = "envoy.filters.http.rbac"
	rbacNetworkFilterName = "envoy.filters.network.rbac"
	rbacTCPStatPrefix     = "tcp."
)

// authzFilters are the RBAC filters of a workload's policies.
type authzFilters struct {
	http []*hcm.HttpFilter
	tcp  []*listener.Filter
}

// newAuthzFilters translates the policies applying to a workload, after
// its jwt_authn filter (nil: none), as istiod orders them: authentication,
// then CUSTOM (ext_authz to providers), AUDIT, DENY, ALLOW.
func newAuthzFilters(env authzEnv, jwt *hcm.HttpFilter, policies []*model.Config) authzFilters {
	var f authzFilters
	f.http, f.tcp = customFilters(env, policies)
	if jwt != nil {
		f.http = append([]*hcm.HttpFilter{jwt}, f.http...)
	}
	h, t := buildAuthzRules(env, policies, false), buildAuthzRules(env, policies, true)
	for _, set := range []struct {
		http, tcp    [2]*rbacpb.RBAC // enforced, shadow (dry run)
		shadowPrefix string
	}{
		{http: [2]*rbacpb.RBAC{h.log}, tcp: [2]*rbacpb.RBAC{t.log}},
		{[2]*rbacpb.RBAC{h.deny, h.denyShadow}, [2]*rbacpb.RBAC{t.deny, t.denyShadow}, dryRunDenyPrefix},
		{[2]*rbacpb.RBAC{h.allow, h.allowShadow}, [2]*rbacpb.RBAC{t.allow, t.allowShadow}, dryRunAllowPrefix},
	} {
		if set.http[0] != nil || set.http[1] != nil {
			f.http = append(f.http, rbacHTTPFilter(&rbachttp.RBAC{Rules: set.http[0], ShadowRules: set.http[1],
				ShadowRulesStatPrefix: shadowPrefix(set.http[1], set.shadowPrefix)}))
		}
		if set.tcp[0] != nil || set.tcp[1] != nil {
			f.tcp = append(f.tcp, rbacNetworkFilter(&rbactcp.RBAC{Rules: set.tcp[0], StatPrefix: rbacTCPStatPrefix,
				ShadowRules: set.tcp[1], ShadowRulesStatPrefix: shadowPrefix(set.tcp[1], set.shadowPrefix)}))
		}
	}
	return f
}

// shadowPrefix is prefix when there are shadow rules, else "".
func shadowPrefix(shadow *rbacpb.RBAC, prefix string) string {
	if shadow == nil {
		return ""
	}
	return prefix
}

// apply adds the filters to every chain of l but those closing traffic
// (tcp_proxy to BlackHoleCluster).
func (f authzFilters) apply(l *listener.Listener) {
	if len(f.http) == 0 && len(f.tcp) == 0 {
		return
	}
	for _, fc := range l.FilterChains {
		var out []*listener.Filter
		for _, nf := range fc.Filters {
			switch nf.GetName() {
			case hcmFilterName:
				m := &hcm.HttpConnectionManager{}
				if err := nf.GetTypedConfig().UnmarshalTo(m); err != nil {
					panic("translate: inbound connection manager: " + err.Error())
				}
				m.HttpFilters = append(append([]*hcm.HttpFilter{}, f.http...), m.HttpFilters...)
				out = append(out, hcmFilter(m))
			case tcpFilterName:
				p := &tcp.TcpProxy{}
				if err := nf.GetTypedConfig().UnmarshalTo(p); err != nil {
					panic("translate: inbound tcp_proxy: " + err.Error())
				}
				if p.GetCluster() != BlackHoleCluster {
					out = append(out, f.tcp...)
				}
				out = append(out, nf)
			default:
				out = append(out, nf)
			}
		}
		fc.Filters = out
	}
}

// gatewayAuthz puts the security policies that apply to a gateway's
// workload on its listeners (every HTTP connection manager and TCP proxy,
// as istiod's gateway listeners), and returns the ext_authz provider
// clusters the gateway lacks among clusters.
func (b *builder) gatewayAuthz(listeners []*listener.Listener, clusters []*cluster.Cluster) []*cluster.Cluster {
	authz, authn := b.workloadAuthz(), b.workloadRequestAuthn()
	if len(authz) == 0 && len(authn) == 0 {
		return nil
	}
	jwt, _ := b.x.jwtAuthn(authn, true)
	f := newAuthzFilters(b.x.authzEnv(), jwt, authz)
	for _, l := range listeners {
		f.apply(l)
	}
	return b.authzProviderClusters(inboundSide{authz: authz}, &Output{Clusters: clusters})
}
