package config

import (
	"flag"
	"fmt"
)

// option is one setting of meshd serve.
type option struct {
	flag   string     // flag name, without dashes
	arg    string     // placeholder for the value in help ("" for booleans)
	env    string     // environment variable setting it; "" for none
	value  flag.Value // bound to its Settings field
	def    string     // default as shown in help; "" means the value's initial text
	usage  string     // what it does
	istiod string     // istiod's counterpart; "" for none
}

// options returns the table of every setting, bound to s's fields, in help
// order.
func options(s *Settings) []option {
	d := &s.Debounce
	k := &s.Keepalive
	return append([]option{
		{flag: "config-dir", arg: "DIR", value: stringValue{p: &s.ConfigDir}, def: "none: watch a cluster",
			usage: "serve a directory of Kubernetes/Istio YAML manifests (file provider) instead of a cluster"},
		{flag: "kubeconfig", arg: "FILE", env: "KUBECONFIG", value: stringValue{p: &s.Kubeconfig}, def: "in a pod, the in-cluster config",
			usage: "kubeconfig of the cluster to watch; exclusive with --config-dir", istiod: "--kubeconfig, $KUBECONFIG"},
		{flag: "mesh-config", arg: "FILE", value: stringValue{p: &s.MeshConfigFile}, def: "none",
			usage: "MeshConfig YAML file; replaces the istio ConfigMap in either provider mode", istiod: "--meshConfig"},
		{flag: "istio-namespace", arg: "NS", env: "POD_NAMESPACE", value: stringValue{p: &s.IstioNamespace},
			usage: "namespace of the mesh ConfigMap", istiod: "its own namespace, $POD_NAMESPACE"},
		{flag: "mesh-configmap", arg: "NAME", value: stringValue{p: &s.MeshConfigMap},
			usage: `name of the ConfigMap whose key "mesh" holds MeshConfig`, istiod: "istio"},
		{flag: "xds-address", arg: "ADDR", value: stringValue{p: &s.XDSAddress},
			usage:  "plaintext ADS listen address (no authentication: any client may claim any namespace); off disables it",
			istiod: "--grpcAddr :15010"},
		{flag: "admin-address", arg: "ADDR", value: stringValue{p: &s.AdminAddress},
			usage:  "monitoring and debug HTTP listen address; localhost only unless set (in a pod, :15014 lets Prometheus scrape)",
			istiod: "--monitoringAddr :15014 (all interfaces)"},
		{flag: "domain", arg: "DOMAIN", value: stringValue{p: &s.Domain},
			usage: "cluster DNS domain", istiod: "--domain"},
		{flag: "log-level", arg: "LEVEL", value: levelValue{p: &s.LogLevel},
			usage: "log level: debug, info, warn or error", istiod: "--log_output_level"},
		{flag: "log-format", arg: "FORMAT", value: stringValue{p: &s.LogFormat, choices: []string{"text", "json"}},
			usage: "log format: text or json", istiod: "--log_as_json"},
		{flag: "poll-interval", arg: "DURATION", value: durationValue{p: &s.PollInterval},
			usage: "how often the file provider checks --config-dir for changes"},

		{flag: "debounce-after", arg: "DURATION", env: "PILOT_DEBOUNCE_AFTER", value: durationValue{p: &d.DebounceAfter},
			usage: "quiet period: changes are pushed once none has arrived for this long", istiod: "PILOT_DEBOUNCE_AFTER, same default"},
		{flag: "debounce-max", arg: "DURATION", env: "PILOT_DEBOUNCE_MAX", value: durationValue{p: &d.DebounceMax},
			usage: "longest a change is held by the debounce", istiod: "PILOT_DEBOUNCE_MAX, same default"},
		{flag: "eds-debounce", env: "PILOT_ENABLE_EDS_DEBOUNCE", value: boolValue{p: &d.EnableEDSDebounce},
			usage:  "debounce endpoint-only changes too; false pushes them at once, on their own",
			istiod: "PILOT_ENABLE_EDS_DEBOUNCE, same default"},
		{flag: "push-leading-edge", env: "MESHD_PUSH_LEADING_EDGE", value: boolValue{p: &d.LeadingEdge},
			usage: "push an isolated change (no change and no push within the quiet period) at once and debounce " +
				"only what follows it; false debounces exactly as istiod", istiod: "none (istiod always waits the quiet period)"},
		{flag: "push-throttle", arg: "N", env: "PILOT_PUSH_THROTTLE", value: intValue{p: &s.PushThrottle, def: AutoThrottle()},
			def:   fmt.Sprintf("min(15+5×GOMAXPROCS, 100) = %d here", AutoThrottle()),
			usage: "pushes in flight at once: scope rebuilds, and ADS responses being sent; 0 means the default", istiod: "PILOT_PUSH_THROTTLE, same default"},
		{flag: "max-requests-per-second", arg: "RATE", env: "PILOT_MAX_REQUESTS_PER_SECOND",
			value: floatValue{p: &s.MaxRequestsPerSecond, def: DefaultMaxRequestsPerSecond},
			usage: "new ADS streams admitted per second (token bucket); a stream that would wait over 1s is " +
				"refused with RESOURCE_EXHAUSTED; 0 means the default",
			istiod: fmt.Sprintf("PILOT_MAX_REQUESTS_PER_SECOND, default min(15+5×GOMAXPROCS, 100) = %d here", AutoThrottle())},
		{flag: "max-requests-burst", arg: "N", env: "MESHD_MAX_REQUESTS_BURST",
			value:  intValue{p: &s.MaxRequestsBurst, def: DefaultMaxRequestsBurst},
			usage:  "new ADS streams admitted at once before --max-requests-per-second applies; 0 means the default",
			istiod: "none (fixed at 1)"},
		{flag: "filter-gateway-cluster-config", env: "PILOT_FILTER_GATEWAY_CLUSTER_CONFIG", value: boolValue{p: &s.FilterGatewayClusterConfig},
			usage: "send gateways only the clusters their routes reference", istiod: "PILOT_FILTER_GATEWAY_CLUSTER_CONFIG, same default"},
		{flag: "scope-gateway-to-namespace", env: "PILOT_SCOPE_GATEWAY_TO_NAMESPACE", value: boolValue{p: &s.ScopeGatewayToNamespace},
			usage: "a gateway proxy gets only the Gateways of its own namespace (whose selector matches its labels); " +
				"false: the matching Gateways of every namespace",
			istiod: "PILOT_SCOPE_GATEWAY_TO_NAMESPACE, same default"},

		{flag: "keepalive-interval", arg: "DURATION", env: "GRPC_KEEPALIVE_INTERVAL", value: durationValue{p: &k.Time},
			usage: "ping an ADS connection idle for this long", istiod: "GRPC_KEEPALIVE_INTERVAL or --keepaliveInterval, same default"},
		{flag: "keepalive-timeout", arg: "DURATION", env: "GRPC_KEEPALIVE_TIMEOUT", value: durationValue{p: &k.Timeout},
			usage: "close an ADS connection whose ping is unanswered this long", istiod: "GRPC_KEEPALIVE_TIMEOUT or --keepaliveTimeout, same default"},
		{flag: "max-connection-age", arg: "DURATION", env: "MESHD_MAX_CONNECTION_AGE", value: durationValue{p: &k.MaxConnectionAge, zeroOK: true},
			usage:  "send GOAWAY to an ADS connection this old (±10% jitter) so proxies rebalance across replicas; 0 disables",
			istiod: "--keepaliveMaxServerConnectionAge, 30m in istiod's Helm chart"},
		{flag: "max-connection-age-grace", arg: "DURATION", env: "MESHD_MAX_CONNECTION_AGE_GRACE", value: durationValue{p: &k.MaxConnectionAgeGrace},
			usage:  "after that GOAWAY, how long the connection's streams may go on before it is closed",
			istiod: "MaxServerConnectionAgeGrace, same default (not settable)"},
	}, append(append(securityOptions(&s.Security), injectOptions(&s.Inject)...), jwtOptions(&s.JWT)...)...)
}
