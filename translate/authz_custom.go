package translate

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	extauthzhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	rbachttp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/rbac/v3"
	extauthztcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/ext_authz/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	rbactcp "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/rbac/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	meshconfig "istio.io/api/mesh/v1alpha1"
	security "istio.io/api/security/v1beta1"

	"github.com/meshd/meshd/internal/model"
)

// AuthorizationPolicy CUSTOM → Envoy ext_authz to a MeshConfig extension
// provider (envoyExtAuthzHttp, envoyExtAuthzGrpc), as istiod's
// pilot/pkg/security/authz/builder (extauthz.go, buildHTTP/buildTCP):
//   - the CUSTOM policies' rules become the shadow rules of an RBAC filter
//     ("istio-ext-authz-<provider>-ns[..]-policy[..]-rule[i]", stat prefix
//     istio_ext_authz_): it denies nothing, and marks the requests they
//     match in its dynamic metadata; the ext_authz filter after it checks
//     only the marked requests (filter_enabled_metadata);
//   - on TCP chains only a gRPC provider applies (network ext_authz); an
//     HTTP provider leaves TCP ports unchecked, as istiod;
//   - one provider per workload (istiod without
//     PILOT_ENABLE_MULTIPLE_CUSTOM_AUTHZ_PROVIDERS); a workload under
//     several, or a provider that is missing or broken, gets istiod's
//     fail-closed instead: the rules as a DENY RBAC filter
//     ("...-deny-due-to-bad-CUSTOM-action"), so what the provider would
//     have checked is denied;
//   - the provider's cluster (outbound|port||service) is added to the
//     workload's clusters when its Sidecar scope does not see the service.

const (
	extAuthzHTTPFilterName    = "envoy.filters.http.ext_authz"
	extAuthzNetworkFilterName = "envoy.filters.network.ext_authz"
	extAuthzMatchPrefix       = "istio-ext-authz"
	extAuthzShadowStatPrefix  = "istio_ext_authz_"
	extAuthzShadowPolicyKey   = extAuthzShadowStatPrefix + "shadow_effective_policy_id"
	badCustomSuffix           = "-deny-due-to-bad-CUSTOM-action"
	extAuthzDefaultTimeout    = 600 // seconds, istiod's timeoutOrDefault (MeshConfig: "default timeout: 600s")
)

// extAuthzProvider is a MeshConfig extension provider resolved against
// the registry: its filters (tcp nil for an HTTP provider), the service
// port its cluster names, or why it cannot be used.
type extAuthzProvider struct {
	http    *extauthzhttp.ExtAuthz
	tcp     *extauthztcp.ExtAuthz
	cluster string
	svc     *model.Service
	port    model.Port
	err     string
}

// extAuthzProvidersKey names the Index's resolved providers.
type extAuthzProvidersKey struct{}

// extAuthzProviders resolves the MeshConfig's ext_authz providers by name.
func (x *Index) extAuthzProviders() map[string]*extAuthzProvider {
	return x.shared.get(extAuthzProvidersKey{}, func() any {
		out := map[string]*extAuthzProvider{}
		for _, p := range x.snap.MeshConfig().GetExtensionProviders() {
			switch c := p.GetProvider().(type) {
			case *meshconfig.MeshConfig_ExtensionProvider_EnvoyExtAuthzHttp:
				out[p.GetName()] = x.httpProvider(c.EnvoyExtAuthzHttp)
			case *meshconfig.MeshConfig_ExtensionProvider_EnvoyExtAuthzGrpc:
				out[p.GetName()] = x.grpcProvider(c.EnvoyExtAuthzGrpc)
			default:
				out[p.GetName()] = &extAuthzProvider{err: "it is not an envoyExtAuthzHttp or envoyExtAuthzGrpc provider"}
			}
		}
		return out
	}).(map[string]*extAuthzProvider)
}

// providerService finds service ("host" (FQDN) or "namespace/host", as
// for access log providers) and port in the registry.
func (x *Index) providerService(service string, port uint32) (*extAuthzProvider, error) {
	host := service
	if ns, h, ok := strings.Cut(service, "/"); ok {
		host = resolveHost(h, ns, x.domain)
	}
	svc := x.byHost[host]
	if svc == nil {
		return nil, fmt.Errorf("service %q is not in the registry", service)
	}
	for _, p := range svc.Ports {
		if p.Port == port {
			return &extAuthzProvider{svc: svc, port: p, cluster: ClusterName(port, "", host)}, nil
		}
	}
	return nil, fmt.Errorf("service %q has no port %d", service, port)
}

// providerBase resolves what both provider kinds have: the service port
// and statusOnError.
func (x *Index) providerBase(service string, port uint32, status string) (*extAuthzProvider, *typev3.HttpStatus, error) {
	p, err := x.providerService(service, port)
	if err != nil {
		return nil, nil, err
	}
	st, err := statusOnError(status)
	if err != nil {
		return nil, nil, err
	}
	return p, st, nil
}

// statusOnError parses a provider's statusOnError ("" → nil).
func statusOnError(s string) (*typev3.HttpStatus, error) {
	if s == "" {
		return nil, nil
	}
	code, err := strconv.Atoi(s)
	if _, known := typev3.StatusCode_name[int32(code)]; err != nil || !known {
		return nil, fmt.Errorf("statusOnError %q is not an HTTP status Envoy knows", s)
	}
	return &typev3.HttpStatus{Code: typev3.StatusCode(code)}, nil
}

// timeoutOf is a provider's timeout, 600 s by default.
func timeoutOf(d *durationpb.Duration) *durationpb.Duration {
	if d == nil {
		return &durationpb.Duration{Seconds: extAuthzDefaultTimeout}
	}
	return d
}

// httpProvider resolves an envoyExtAuthzHttp provider.
func (x *Index) httpProvider(c *meshconfig.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationHttpProvider) *extAuthzProvider {
	p, status, err := x.providerBase(c.GetService(), c.GetPort(), c.GetStatusOnError())
	if err != nil {
		return &extAuthzProvider{err: err.Error()}
	}
	if pp := c.GetPathPrefix(); pp != "" && !strings.HasPrefix(pp, "/") {
		return &extAuthzProvider{err: fmt.Sprintf("pathPrefix %q must begin with /", pp)}
	}
	requestHeaders := c.GetIncludeRequestHeadersInCheck()
	if len(requestHeaders) == 0 {
		requestHeaders = c.GetIncludeHeadersInCheck() //nolint:staticcheck // deprecated, still honoured as istiod does
	}
	for field, hs := range map[string][]string{"includeRequestHeadersInCheck": requestHeaders,
		"headersToUpstreamOnAllow": c.GetHeadersToUpstreamOnAllow(), "headersToDownstreamOnDeny": c.GetHeadersToDownstreamOnDeny(),
		"headersToDownstreamOnAllow": c.GetHeadersToDownstreamOnAllow()} {
		if slices.Contains(hs, "*") {
			return &extAuthzProvider{err: fmt.Sprintf(`%s: a single wildcard ("*") is not supported, use a prefix or suffix match`, field)}
		}
	}
	svc := &extauthzhttp.HttpService{PathPrefix: c.GetPathPrefix(), ServerUri: &core.HttpUri{
		Uri: "http://" + p.svc.Hostname, Timeout: timeoutOf(c.GetTimeout()),
		HttpUpstreamType: &core.HttpUri_Cluster{Cluster: p.cluster}}}
	keys := make([]string, 0, len(c.GetIncludeAdditionalHeadersInCheck()))
	for k := range c.GetIncludeAdditionalHeadersInCheck() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		svc.AuthorizationRequest = &extauthzhttp.AuthorizationRequest{}
		for _, k := range keys {
			svc.AuthorizationRequest.HeadersToAdd = append(svc.AuthorizationRequest.HeadersToAdd,
				&core.HeaderValue{Key: k, Value: c.GetIncludeAdditionalHeadersInCheck()[k]})
		}
	}
	if len(c.GetHeadersToUpstreamOnAllow())+len(c.GetHeadersToDownstreamOnDeny())+len(c.GetHeadersToDownstreamOnAllow()) > 0 {
		svc.AuthorizationResponse = &extauthzhttp.AuthorizationResponse{
			AllowedUpstreamHeaders:        headerList(c.GetHeadersToUpstreamOnAllow()),
			AllowedClientHeaders:          headerList(c.GetHeadersToDownstreamOnDeny()),
			AllowedClientHeadersOnSuccess: headerList(c.GetHeadersToDownstreamOnAllow()),
		}
	}
	p.http = &extauthzhttp.ExtAuthz{StatusOnError: status, FailureModeAllow: c.GetFailOpen(),
		TransportApiVersion: core.ApiVersion_V3, Services: &extauthzhttp.ExtAuthz_HttpService{HttpService: svc},
		AllowedHeaders: headerList(requestHeaders), WithRequestBody: requestBody(c.GetIncludeRequestBodyInCheck())}
	return p
}

// grpcProvider resolves an envoyExtAuthzGrpc provider.
func (x *Index) grpcProvider(c *meshconfig.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider) *extAuthzProvider {
	p, status, err := x.providerBase(c.GetService(), c.GetPort(), c.GetStatusOnError())
	if err != nil {
		return &extAuthzProvider{err: err.Error()}
	}
	grpc := &core.GrpcService{Timeout: timeoutOf(c.GetTimeout()), TargetSpecifier: &core.GrpcService_EnvoyGrpc_{
		EnvoyGrpc: &core.GrpcService_EnvoyGrpc{ClusterName: p.cluster, Authority: p.svc.Hostname}}}
	p.http = &extauthzhttp.ExtAuthz{StatusOnError: status, FailureModeAllow: c.GetFailOpen(), TransportApiVersion: core.ApiVersion_V3,
		Services: &extauthzhttp.ExtAuthz_GrpcService{GrpcService: grpc}, WithRequestBody: requestBody(c.GetIncludeRequestBodyInCheck())}
	p.tcp = &extauthztcp.ExtAuthz{StatPrefix: rbacTCPStatPrefix, FailureModeAllow: c.GetFailOpen(),
		TransportApiVersion: core.ApiVersion_V3, GrpcService: grpc}
	return p
}

// headerList is istiod's generateHeaders: case-insensitive exact, "*x"
// suffix, "x*" prefix; nil for none.
func headerList(headers []string) *matcher.ListStringMatcher {
	if len(headers) == 0 {
		return nil
	}
	out := &matcher.ListStringMatcher{}
	for _, h := range headers {
		m := &matcher.StringMatcher{IgnoreCase: true, MatchPattern: &matcher.StringMatcher_Exact{Exact: h}}
		if after, ok := strings.CutPrefix(h, "*"); ok {
			m.MatchPattern = &matcher.StringMatcher_Suffix{Suffix: after}
		} else if before, ok := strings.CutSuffix(h, "*"); ok {
			m.MatchPattern = &matcher.StringMatcher_Prefix{Prefix: before}
		}
		out.Patterns = append(out.Patterns, m)
	}
	return out
}

// requestBody is includeRequestBodyInCheck as Envoy's BufferSettings.
func requestBody(b *meshconfig.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationRequestBody) *extauthzhttp.BufferSettings {
	if b == nil {
		return nil
	}
	return &extauthzhttp.BufferSettings{MaxRequestBytes: b.GetMaxRequestBytes(), AllowPartialMessage: b.GetAllowPartialMessage(),
		PackAsBytes: b.GetPackAsBytes()}
}

// customProviders groups the CUSTOM policies by provider name, sorted.
func customProviders(policies []*model.Config) ([]string, map[string][]*model.Config) {
	byProvider := map[string][]*model.Config{}
	for _, cfg := range policies {
		spec := cfg.Spec.(*security.AuthorizationPolicy)
		if spec.GetAction() == security.AuthorizationPolicy_CUSTOM {
			name := spec.GetProvider().GetName()
			byProvider[name] = append(byProvider[name], cfg)
		}
	}
	names := make([]string, 0, len(byProvider))
	for n := range byProvider {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, byProvider
}

// customRules are the RBAC policies of a provider's CUSTOM policies (the
// requests to check), named after the provider.
func customRules(env authzEnv, provider string, policies []*model.Config, forTCP bool) *rbacpb.RBAC {
	r := &rbacpb.RBAC{Action: rbacpb.RBAC_DENY, Policies: map[string]*rbacpb.Policy{}}
	for _, cfg := range policies {
		spec := cfg.Spec.(*security.AuthorizationPolicy)
		prefix := extAuthzMatchPrefix + "-" + provider + "-"
		if len(spec.GetRules()) == 0 {
			r.Policies[prefix+rbacPolicyName(cfg, 0)] = rbacMatchNever()
		}
		for i, rule := range spec.GetRules() {
			name := prefix + rbacPolicyName(cfg, i)
			if field, _ := unsupportedRuleField(rule); field != "" {
				r.Policies[name] = rbacMatchAll() // check every request
				continue
			}
			if p, ok := rulePolicy(env, cfg.Namespace, rule, forTCP, rbacpb.RBAC_DENY); ok {
				r.Policies[name] = p
			}
		}
	}
	return r
}

// customFilters are a workload's CUSTOM filters: for each provider an
// RBAC filter marking what to check and ext_authz checking it, or, for a
// bad provider or several providers, the DENY filter of their rules.
func customFilters(env authzEnv, policies []*model.Config) (http []*hcm.HttpFilter, tcp []*listener.Filter) {
	names, byProvider := customProviders(policies)
	for _, name := range names {
		hr, tr := customRules(env, name, byProvider[name], false), customRules(env, name, byProvider[name], true)
		p := env.providers[name]
		if len(names) > 1 || p == nil || p.err != "" {
			http = append(http, rbacHTTPFilter(&rbachttp.RBAC{Rules: badCustom(hr)}))
			tcp = append(tcp, rbacNetworkFilter(&rbactcp.RBAC{Rules: badCustom(tr), StatPrefix: rbacTCPStatPrefix}))
			continue
		}
		enabled := extAuthzEnabled(rbacHTTPFilterName, name)
		h := cloneExtAuthzHTTP(p.http)
		h.FilterEnabledMetadata = enabled
		http = append(http, rbacHTTPFilter(&rbachttp.RBAC{ShadowRules: hr, ShadowRulesStatPrefix: extAuthzShadowStatPrefix}),
			&hcm.HttpFilter{Name: extAuthzHTTPFilterName, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(h)}})
		if p.tcp == nil {
			continue // an HTTP provider does not check TCP, as istiod
		}
		t := cloneExtAuthzTCP(p.tcp)
		t.FilterEnabledMetadata = extAuthzEnabled(rbacNetworkFilterName, name)
		tcp = append(tcp, rbacNetworkFilter(&rbactcp.RBAC{ShadowRules: tr, StatPrefix: rbacTCPStatPrefix,
			ShadowRulesStatPrefix: extAuthzShadowStatPrefix}),
			&listener.Filter{Name: extAuthzNetworkFilterName, ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(t)}})
	}
	return http, tcp
}

// badCustom is istiod's fail-closed for a CUSTOM policy it cannot send
// to its provider: its rules, denying.
func badCustom(r *rbacpb.RBAC) *rbacpb.RBAC {
	out := &rbacpb.RBAC{Action: rbacpb.RBAC_DENY, Policies: map[string]*rbacpb.Policy{}}
	for name, p := range r.Policies {
		out.Policies[name+badCustomSuffix] = p
	}
	return out
}

// extAuthzEnabled matches requests the provider's shadow rules marked.
func extAuthzEnabled(filter, provider string) *matcher.MetadataMatcher {
	return &matcher.MetadataMatcher{Filter: filter,
		Path: []*matcher.MetadataMatcher_PathSegment{{Segment: &matcher.MetadataMatcher_PathSegment_Key{Key: extAuthzShadowPolicyKey}}},
		Value: &matcher.ValueMatcher{MatchPattern: &matcher.ValueMatcher_StringMatch{StringMatch: &matcher.StringMatcher{
			MatchPattern: &matcher.StringMatcher_Prefix{Prefix: extAuthzMatchPrefix + "-" + provider}}}}}
}

func rbacHTTPFilter(r *rbachttp.RBAC) *hcm.HttpFilter {
	return &hcm.HttpFilter{Name: rbacHTTPFilterName, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(r)}}
}

func rbacNetworkFilter(r *rbactcp.RBAC) *listener.Filter {
	return &listener.Filter{Name: rbacNetworkFilterName, ConfigType: &listener.Filter_TypedConfig{TypedConfig: mustAny(r)}}
}

// customProviderError reports a CUSTOM policy whose provider cannot be
// used, with istiod's fail-closed effect; "" when it can.
func customProviderError(providers map[string]*extAuthzProvider, name string) string {
	p, ok := providers[name]
	switch {
	case !ok:
		known := make([]string, 0, len(providers))
		for n := range providers {
			known = append(known, n)
		}
		sort.Strings(known)
		return fmt.Sprintf("extension provider %q is not in MeshConfig extensionProviders (ext_authz providers: %v)", name, known)
	case p.err != "":
		return fmt.Sprintf("extension provider %q cannot be used: %s", name, p.err)
	}
	return ""
}

// customClusters are the provider clusters a workload's CUSTOM policies
// call, for the builder to add where its view lacks them.
func customClusters(providers map[string]*extAuthzProvider, policies []*model.Config) []*extAuthzProvider {
	names, _ := customProviders(policies)
	if len(names) != 1 {
		return nil
	}
	if p := providers[names[0]]; p != nil && p.err == "" {
		return []*extAuthzProvider{p}
	}
	return nil
}

// cloneExtAuthzHTTP copies a provider's shared filter config before a
// workload's metadata matcher is set on it.
func cloneExtAuthzHTTP(c *extauthzhttp.ExtAuthz) *extauthzhttp.ExtAuthz {
	return proto.Clone(c).(*extauthzhttp.ExtAuthz)
}

// cloneExtAuthzTCP is cloneExtAuthzHTTP for the network filter.
func cloneExtAuthzTCP(c *extauthztcp.ExtAuthz) *extauthztcp.ExtAuthz {
	return proto.Clone(c).(*extauthztcp.ExtAuthz)
}

// authzProviderClusters are the clusters of the workload's ext_authz
// provider its view lacks (a Sidecar scope that does not import it).
func (b *builder) authzProviderClusters(in inboundSide, view *Output) []*cluster.Cluster {
	var out []*cluster.Cluster
	for _, p := range customClusters(b.x.extAuthzProviders(), in.authz) {
		if !hasCluster(view.Clusters, p.cluster) {
			if c := b.sharedCluster(p.cluster, p.svc, p.port); c != nil {
				out = append(out, c)
			}
		}
	}
	return out
}
