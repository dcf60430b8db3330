package translate

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	faultcommon "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/common/fault/v3"
	cors "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/cors/v3"
	fault "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/fault/v3"
	router "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
)

// HTTP filter names as Envoy registers them; routes configure the fault and
// CORS filters through typed_per_filter_config under these names.
const (
	faultFilterName = "envoy.filters.http.fault"
	corsFilterName  = "envoy.filters.http.cors"
)

// grpcStatusCodes maps the gRPC status names Istio accepts in
// fault.abort.grpcStatus to their codes.
var grpcStatusCodes = map[string]uint32{
	"OK": 0, "CANCELLED": 1, "UNKNOWN": 2, "INVALID_ARGUMENT": 3, "DEADLINE_EXCEEDED": 4,
	"NOT_FOUND": 5, "ALREADY_EXISTS": 6, "PERMISSION_DENIED": 7, "RESOURCE_EXHAUSTED": 8,
	"FAILED_PRECONDITION": 9, "ABORTED": 10, "OUT_OF_RANGE": 11, "UNIMPLEMENTED": 12,
	"INTERNAL": 13, "UNAVAILABLE": 14, "DATA_LOSS": 15, "UNAUTHENTICATED": 16,
}

// sidecarHTTPFilters is the HTTP filter chain of a sidecar's outbound HCM.
// As istiod, the fault and CORS filters are always present (they do nothing
// unless a route configures them) so that adding a fault or CORS policy to a
// VirtualService changes only routes, not listeners.
func sidecarHTTPFilters() []*hcm.HttpFilter {
	return []*hcm.HttpFilter{
		{Name: faultFilterName, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&fault.HTTPFault{})}},
		{Name: corsFilterName, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&cors.Cors{})}},
		routerFilter(),
	}
}

// grpcHTTPFilters is the filter chain of a proxyless gRPC API listener, as
// istiod's grpcgen: fault and router, both supported by grpc-go (which NACKs
// a listener with an HTTP filter it does not know).
func grpcHTTPFilters() []*hcm.HttpFilter {
	return []*hcm.HttpFilter{
		{Name: faultFilterName, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&fault.HTTPFault{})}},
		routerFilter(),
	}
}

func routerFilter() *hcm.HttpFilter {
	return &hcm.HttpFilter{Name: routerFilterName, ConfigType: &hcm.HttpFilter_TypedConfig{TypedConfig: mustAny(&router.Router{})}}
}

// grpcSupportsRoute reports whether grpc-go can act on an HTTP route:
// redirects and direct responses are not supported by proxyless gRPC and
// are left out of its config.
func grpcSupportsRoute(hr *networking.HTTPRoute) bool {
	return hr.GetRedirect() == nil && hr.GetDirectResponse() == nil
}

// translateFault converts fault injection as istiod's TranslateFault: a
// fixed delay and an HTTP or gRPC status abort, each with its percentage
// (unset: the deprecated integer percent, so 0%). Exponential delays and
// HTTP/2 error aborts are not supported and dropped. nil if nothing is left.
func translateFault(in *networking.HTTPFaultInjection) *fault.HTTPFault {
	if in == nil {
		return nil
	}
	out := &fault.HTTPFault{}
	if d := in.GetDelay(); d != nil && d.GetFixedDelay() != nil {
		out.Delay = &faultcommon.FaultDelay{
			FaultDelaySecifier: &faultcommon.FaultDelay_FixedDelay{FixedDelay: durationpb.New(d.GetFixedDelay().AsDuration())},
			Percentage:         faultPercent(d.GetPercentage(), d.GetPercent()), //nolint:staticcheck // deprecated field still honoured
		}
	}
	if a := in.GetAbort(); a != nil {
		abort := &fault.FaultAbort{}
		if a.GetPercentage() != nil {
			abort.Percentage = fractionalPercent(a.GetPercentage())
		}
		switch e := a.GetErrorType().(type) {
		case *networking.HTTPFaultInjection_Abort_HttpStatus:
			abort.ErrorType = &fault.FaultAbort_HttpStatus{HttpStatus: uint32(e.HttpStatus)}
		case *networking.HTTPFaultInjection_Abort_GrpcStatus:
			abort.ErrorType = &fault.FaultAbort_GrpcStatus{GrpcStatus: grpcStatusCodes[strings.ToUpper(e.GrpcStatus)]}
		default:
			abort = nil
		}
		out.Abort = abort
	}
	if out.Delay == nil && out.Abort == nil {
		return nil
	}
	return out
}

func faultPercent(p *networking.Percent, legacy int32) *typev3.FractionalPercent {
	if p != nil {
		return fractionalPercent(p)
	}
	return &typev3.FractionalPercent{Numerator: uint32(max(legacy, 0)), Denominator: typev3.FractionalPercent_HUNDRED}
}

// translateCors converts a CorsPolicy as istiod's TranslateCORSPolicy.
func translateCors(in *networking.CorsPolicy) *cors.CorsPolicy {
	out := &cors.CorsPolicy{
		ForwardNotMatchingPreflights: wrapperspb.Bool(in.GetUnmatchedPreflights() != networking.CorsPolicy_IGNORE),
		FilterEnabled: &core.RuntimeFractionalPercent{
			DefaultValue: &typev3.FractionalPercent{Numerator: 100, Denominator: typev3.FractionalPercent_HUNDRED},
		},
		AllowHeaders:  strings.Join(in.GetAllowHeaders(), ","),
		AllowMethods:  strings.Join(in.GetAllowMethods(), ","),
		ExposeHeaders: strings.Join(in.GetExposeHeaders(), ","),
	}
	if in.GetAllowCredentials() != nil {
		out.AllowCredentials = wrapperspb.Bool(in.GetAllowCredentials().GetValue())
	}
	if in.GetAllowOrigins() != nil {
		for _, o := range in.GetAllowOrigins() {
			if sm := stringMatcher(o); sm != nil {
				out.AllowOriginStringMatch = append(out.AllowOriginStringMatch, sm)
			}
		}
	} else {
		for _, o := range in.GetAllowOrigin() { //nolint:staticcheck // deprecated field still honoured
			out.AllowOriginStringMatch = append(out.AllowOriginStringMatch,
				&matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: o}})
		}
	}
	if in.GetMaxAge() != nil {
		out.MaxAge = strconv.FormatInt(in.GetMaxAge().GetSeconds(), 10)
	}
	return out
}

// validateVirtualHostConfigs runs ValidateAll on the typed configs inside
// a virtual host's routes (per-filter configs, retry extensions).
func validateVirtualHostConfigs(vh *route.VirtualHost) error {
	var anys []*anypb.Any
	for _, r := range vh.GetRoutes() {
		for _, name := range slices.Sorted(maps.Keys(r.GetTypedPerFilterConfig())) {
			anys = append(anys, r.GetTypedPerFilterConfig()[name])
		}
		rp := r.GetRoute().GetRetryPolicy()
		for _, p := range rp.GetRetryHostPredicate() {
			anys = append(anys, p.GetTypedConfig())
		}
		if p := rp.GetRetryPriority(); p != nil {
			anys = append(anys, p.GetTypedConfig())
		}
	}
	for _, a := range anys {
		if _, err := validateAny(a); err != nil {
			return err
		}
	}
	return nil
}
