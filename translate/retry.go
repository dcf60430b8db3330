package translate

import (
	"net/http"
	"strconv"
	"strings"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	previoushosts "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/host/previous_hosts/v3"
	previouspriorities "github.com/envoyproxy/go-control-plane/envoy/extensions/retry/priority/previous_priorities/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
)

// defaultRetryOn is istiod's retry_on for routes without a retry policy.
const defaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"

// grpcRetryCodes are the retry_on conditions grpc-go understands; it ignores
// the others, so meshd leaves them out of proxyless gRPC config.
var grpcRetryCodes = map[string]bool{
	"cancelled": true, "deadline-exceeded": true, "internal": true,
	"resource-exhausted": true, "unavailable": true,
}

// retryPolicy converts an HTTPRetry as istiod's retry.ConvertPolicy: no
// policy means istiod's default (2 retries on connect failures, refused
// streams, gRPC unavailable/cancelled and 503, preferring other hosts);
// attempts 0 disables retries; otherwise the default with the user's fields.
func retryPolicy(in *networking.HTTPRetry) *route.RetryPolicy {
	out := &route.RetryPolicy{
		NumRetries:                    wrapperspb.UInt32(2),
		RetryOn:                       defaultRetryOn,
		RetriableStatusCodes:          []uint32{http.StatusServiceUnavailable},
		HostSelectionRetryMaxAttempts: 5,
		RetryHostPredicate:            []*route.RetryPolicy_RetryHostPredicate{previousHostsPredicate()},
	}
	if in == nil {
		return out
	}
	if in.GetAttempts() <= 0 {
		return nil
	}
	out.NumRetries = wrapperspb.UInt32(uint32(in.GetAttempts()))
	if in.GetRetryOn() != "" {
		out.RetryOn, out.RetriableStatusCodes = parseRetryOn(in.GetRetryOn())
		if len(out.RetriableStatusCodes) > 0 && !strings.Contains(out.RetryOn, "retriable-status-codes") {
			out.RetryOn = strings.TrimPrefix(out.RetryOn+",retriable-status-codes", ",")
		}
	}
	if t := in.GetPerTryTimeout(); t != nil {
		out.PerTryTimeout = durationpb.New(t.AsDuration())
	}
	if v := in.GetRetryIgnorePreviousHosts(); v != nil && !v.GetValue() {
		out.RetryHostPredicate = nil
	}
	if in.GetRetryRemoteLocalities().GetValue() {
		out.RetryPriority = &route.RetryPolicy_RetryPriority{
			Name: "envoy.retry_priorities.previous_priorities",
			ConfigType: &route.RetryPolicy_RetryPriority_TypedConfig{
				TypedConfig: mustAny(&previouspriorities.PreviousPrioritiesConfig{UpdateFrequency: 2}),
			},
		}
	}
	if b := in.GetBackoff(); b != nil && b.AsDuration() > 0 {
		out.RetryBackOff = &route.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(b.AsDuration())}
	}
	return out
}

func previousHostsPredicate() *route.RetryPolicy_RetryHostPredicate {
	return &route.RetryPolicy_RetryHostPredicate{
		Name: "envoy.retry_host_predicates.previous_hosts",
		ConfigType: &route.RetryPolicy_RetryHostPredicate_TypedConfig{
			TypedConfig: mustAny(&previoushosts.PreviousHostsPredicate{}),
		},
	}
}

// parseRetryOn splits retryOn into Envoy conditions and HTTP status codes.
func parseRetryOn(s string) (string, []uint32) {
	var on []string
	var codes []uint32
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if n, err := strconv.Atoi(part); err == nil && http.StatusText(n) != "" {
			codes = append(codes, uint32(n))
			continue
		}
		on = append(on, part)
	}
	return strings.Join(on, ","), codes
}

// grpcRetryPolicy is the retry policy of a proxyless gRPC route: only set
// when the VirtualService asks for retries, with retry_on reduced to the
// gRPC status codes grpc-go supports (no policy if none is left),
// num_retries and retry_back_off. grpc-go ignores per-try timeouts and
// host predicates, so they are left out.
func grpcRetryPolicy(in *networking.HTTPRetry) *route.RetryPolicy {
	if in == nil || in.GetAttempts() <= 0 {
		return nil
	}
	retryOn := in.GetRetryOn()
	if retryOn == "" {
		retryOn = defaultRetryOn
	}
	var on []string
	for _, part := range strings.Split(retryOn, ",") {
		part = strings.ToLower(strings.TrimSpace(part))
		if grpcRetryCodes[part] {
			on = append(on, part)
		}
	}
	if len(on) == 0 {
		return nil
	}
	out := &route.RetryPolicy{RetryOn: strings.Join(on, ","), NumRetries: wrapperspb.UInt32(uint32(in.GetAttempts()))}
	if b := in.GetBackoff(); b != nil && b.AsDuration() > 0 {
		out.RetryBackOff = &route.RetryPolicy_RetryBackOff{BaseInterval: durationpb.New(b.AsDuration())}
	}
	return out
}
