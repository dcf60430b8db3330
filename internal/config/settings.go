package config

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"

	"github.com/meshd/meshd/internal/push"
)

// Settings are meshd serve's settings after Parse: defaults, then the
// environment, then flags.
type Settings struct {
	// ConfigDir selects the file provider: a directory of YAML manifests.
	ConfigDir string
	// Kubeconfig is the cluster to watch when ConfigDir is empty; empty means
	// the in-cluster config.
	Kubeconfig string
	// MeshConfigFile is a MeshConfig YAML file replacing the istio ConfigMap.
	MeshConfigFile string
	// IstioNamespace holds the mesh ConfigMap (istiod: $POD_NAMESPACE).
	IstioNamespace string
	// MeshConfigMap is the name of the ConfigMap whose key "mesh" holds
	// MeshConfig.
	MeshConfigMap string
	// XDSAddress is the plaintext ADS listen address ("off" disables it).
	XDSAddress string
	// AdminAddress is the monitoring and debug HTTP listen address.
	AdminAddress string
	// Domain is the cluster DNS domain.
	Domain string
	// LogLevel is the minimum level logged.
	LogLevel slog.Level
	// LogFormat is "text" or "json".
	LogFormat string
	// PollInterval is how often the file provider checks ConfigDir.
	PollInterval time.Duration

	// Debounce tunes internal/push: PILOT_DEBOUNCE_AFTER, PILOT_DEBOUNCE_MAX,
	// PILOT_ENABLE_EDS_DEBOUNCE and MESHD_PUSH_LEADING_EDGE.
	Debounce push.Options
	// PushThrottle (PILOT_PUSH_THROTTLE) limits the pushes in flight at once.
	PushThrottle int
	// MaxRequestsPerSecond (PILOT_MAX_REQUESTS_PER_SECOND) is the rate of the
	// token bucket admitting new ADS streams.
	MaxRequestsPerSecond float64
	// MaxRequestsBurst is that bucket's size (istiod: 1).
	MaxRequestsBurst int
	// FilterGatewayClusterConfig (PILOT_FILTER_GATEWAY_CLUSTER_CONFIG) sends
	// gateways only the clusters their routes reference.
	FilterGatewayClusterConfig bool
	// ScopeGatewayToNamespace (PILOT_SCOPE_GATEWAY_TO_NAMESPACE) gives a
	// gateway proxy only the Gateways of its own namespace.
	ScopeGatewayToNamespace bool
	// Keepalive tunes the ADS gRPC server's connections.
	Keepalive Keepalive
	// Security configures the secure port: TLS, authentication and the CA.
	Security Security
	// Inject configures the sidecar injection webhook.
	Inject Inject
	// JWT configures the fetching of RequestAuthentications' jwksUri.
	JWT JWT
}

// Keepalive are the gRPC server's keepalive settings, as istiod's
// pkg/keepalive.Options.
type Keepalive struct {
	// Time is how long a connection may be idle before the server pings it.
	Time time.Duration
	// Timeout is how long the server waits for the ping's answer before it
	// closes the connection.
	Timeout time.Duration
	// MaxConnectionAge is how long a connection lives before the server sends
	// GOAWAY (gRPC adds ±10% jitter), so proxies rebalance across replicas.
	// Zero means forever.
	MaxConnectionAge time.Duration
	// MaxConnectionAgeGrace is how long streams may continue after that
	// GOAWAY before the connection is closed.
	MaxConnectionAgeGrace time.Duration
}

// MinClientPing is the shortest ping interval the server tolerates from a
// client before it answers with GOAWAY (too_many_pings): half of Time, as
// istiod, and never more than 15s.
func (k Keepalive) MinClientPing() time.Duration {
	return min(k.Time/2, 15*time.Second)
}

// Defaults that are not push.Options' own.
const (
	// DefaultMaxRequestsPerSecond is meshd's default new-stream rate; istiod's
	// is AutoThrottle(). A new stream costs meshd little: its config is
	// already built and serialised for its scope. The benchmark (make bench:
	// ~4 ms of meshd CPU per new sidecar at 500 services) showed 100/s made
	// the rate limit, not meshd, the bottleneck of a 1,000-proxy connect
	// storm. Since responses share their resources' bytes (xds.Codec),
	// admitting all 2,000 proxies of the 1,000-service benchmark at once
	// configured them in 6.5 s with no more memory than admitting them over
	// two seconds (which, with Envoy's backoff for refused streams, took
	// 6.8-14 s); hence 1,000/s with a burst of 2,000.
	DefaultMaxRequestsPerSecond = 1000
	// DefaultMaxRequestsBurst is meshd's default bucket size (istiod: 1), so a
	// replica restart's reconnect wave is admitted at once.
	DefaultMaxRequestsBurst = 2000
	// StreamMaxWait is how long a new stream may wait for the rate limit
	// before it is refused, as istiod.
	StreamMaxWait = time.Second
)

// AutoThrottle is istiod's machine-sized default for PILOT_PUSH_THROTTLE and
// PILOT_MAX_REQUESTS_PER_SECOND: min(15 + 5 × GOMAXPROCS, 100).
func AutoThrottle() int {
	return min(15+5*runtime.GOMAXPROCS(0), 100)
}

// defaults returns the Settings before the environment and flags apply.
func defaults() *Settings {
	return &Settings{
		IstioNamespace:       "istio-system",
		MeshConfigMap:        "istio",
		XDSAddress:           ":15010",
		AdminAddress:         "127.0.0.1:15014",
		Domain:               "cluster.local",
		LogLevel:             slog.LevelInfo,
		LogFormat:            "text",
		PollInterval:         250 * time.Millisecond,
		Debounce:             push.DefaultOptions(),
		PushThrottle:         AutoThrottle(),
		MaxRequestsPerSecond: DefaultMaxRequestsPerSecond,
		MaxRequestsBurst:     DefaultMaxRequestsBurst,
		Keepalive: Keepalive{
			Time:                  30 * time.Second,
			Timeout:               10 * time.Second,
			MaxConnectionAge:      30 * time.Minute,
			MaxConnectionAgeGrace: 10 * time.Second,
		},
		Security: defaultSecurity(),
		Inject:   defaultInject(),
		JWT:      defaultJWT(),
	}
}

// Logger returns a slog.Logger writing to w in LogFormat at LogLevel.
func (s *Settings) Logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.LogLevel}
	if s.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Source describes where config comes from, for the start-up log line.
func (s *Settings) Source() string {
	switch {
	case s.ConfigDir != "":
		return "dir:" + s.ConfigDir
	case s.Kubeconfig != "":
		return "kubeconfig:" + s.Kubeconfig
	}
	return "in-cluster"
}

// LogAttrs returns the tuning settings as slog key-value pairs, for the
// start-up log line.
func (s *Settings) LogAttrs() []any {
	d := s.Debounce
	return []any{
		"debounceAfter", d.DebounceAfter, "debounceMax", d.DebounceMax,
		"edsDebounce", d.EnableEDSDebounce, "leadingEdge", d.LeadingEdge,
		"pushThrottle", s.PushThrottle,
		"maxRequestsPerSecond", fmt.Sprint(s.MaxRequestsPerSecond), "maxRequestsBurst", s.MaxRequestsBurst,
		"filterGatewayClusterConfig", s.FilterGatewayClusterConfig,
		"scopeGatewayToNamespace", s.ScopeGatewayToNamespace,
		"maxConnectionAge", s.Keepalive.MaxConnectionAge,
		"xdsAuth", s.Security.XDSAuth, "certProvider", s.Security.CertProvider,
	}
}
