package config

import (
	"bytes"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/push"
)

// env returns a getenv reading from kv ("NAME", "value", ...).
func env(kv ...string) func(string) string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

func TestDefaults(t *testing.T) {
	s, err := Parse(nil, env())
	require.NoError(t, err)
	auto := min(15+5*runtime.GOMAXPROCS(0), 100)
	want := &Settings{
		IstioNamespace: "istio-system",
		MeshConfigMap:  "istio",
		XDSAddress:     ":15010",
		AdminAddress:   "127.0.0.1:15014",
		Domain:         "cluster.local",
		LogLevel:       slog.LevelInfo,
		LogFormat:      "text",
		PollInterval:   250 * time.Millisecond,
		Debounce: push.Options{
			DebounceAfter:     100 * time.Millisecond,
			DebounceMax:       10 * time.Second,
			EnableEDSDebounce: true,
			LeadingEdge:       true,
			Clock:             push.RealClock(),
		},
		PushThrottle:               auto,
		MaxRequestsPerSecond:       1000,
		MaxRequestsBurst:           2000,
		FilterGatewayClusterConfig: false,
		ScopeGatewayToNamespace:    false,
		Keepalive: Keepalive{
			Time:                  30 * time.Second,
			Timeout:               10 * time.Second,
			MaxConnectionAge:      30 * time.Minute,
			MaxConnectionAgeGrace: 10 * time.Second,
		},
		Security: Security{SecureXDSAddress: ":15012", XDSAuth: true, CertProvider: "istiod",
			CustomCertDir: "./var/run/secrets/istiod/tls", RootCADir: "./etc/cacerts", TrustDomain: "cluster.local",
			DefaultWorkloadCertTTL: 24 * time.Hour, MaxWorkloadCertTTL: 90 * 24 * time.Hour, TokenAudiences: "istio-ca"},
		Inject: Inject{Address: ":15017", NativeSidecars: "auto", ProxyImage: "docker.io/istio/proxyv2:1.29.6",
			MeshdImage: "ghcr.io/meshd/meshd:latest", FailurePolicy: "closed", ClusterID: "Kubernetes", RewriteAppProbes: true},
		JWT: JWT{RemoteJWKS: "false", RefreshInterval: 20 * time.Minute, CABundle: "/cacerts/extra.pem"},
	}
	assert.Equal(t, want, s)
	assert.Equal(t, auto, AutoThrottle())
	assert.Equal(t, 15*time.Second, s.Keepalive.MinClientPing())
	assert.Equal(t, 5*time.Second, Keepalive{Time: 10 * time.Second}.MinClientPing())
	assert.Equal(t, 15*time.Second, Keepalive{Time: time.Hour}.MinClientPing())
	assert.Equal(t, "in-cluster", s.Source())
}

func TestEnvironment(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		got         func(*Settings) any
		want        any
	}{
		{"PILOT_DEBOUNCE_AFTER", "250ms", func(s *Settings) any { return s.Debounce.DebounceAfter }, 250 * time.Millisecond},
		{"PILOT_DEBOUNCE_MAX", "3s", func(s *Settings) any { return s.Debounce.DebounceMax }, 3 * time.Second},
		{"PILOT_ENABLE_EDS_DEBOUNCE", "false", func(s *Settings) any { return s.Debounce.EnableEDSDebounce }, false},
		{"MESHD_PUSH_LEADING_EDGE", "false", func(s *Settings) any { return s.Debounce.LeadingEdge }, false},
		{"MESHD_PUSH_LEADING_EDGE", "0", func(s *Settings) any { return s.Debounce.LeadingEdge }, false},
		{"PILOT_PUSH_THROTTLE", "7", func(s *Settings) any { return s.PushThrottle }, 7},
		{"PILOT_PUSH_THROTTLE", "0", func(s *Settings) any { return s.PushThrottle }, AutoThrottle()},
		{"PILOT_MAX_REQUESTS_PER_SECOND", "12.5", func(s *Settings) any { return s.MaxRequestsPerSecond }, 12.5},
		{"PILOT_MAX_REQUESTS_PER_SECOND", "0", func(s *Settings) any { return s.MaxRequestsPerSecond }, 1000.0},
		{"MESHD_MAX_REQUESTS_BURST", "5", func(s *Settings) any { return s.MaxRequestsBurst }, 5},
		{"PILOT_FILTER_GATEWAY_CLUSTER_CONFIG", "true", func(s *Settings) any { return s.FilterGatewayClusterConfig }, true},
		{"PILOT_SCOPE_GATEWAY_TO_NAMESPACE", "true", func(s *Settings) any { return s.ScopeGatewayToNamespace }, true},
		{"GRPC_KEEPALIVE_INTERVAL", "1m", func(s *Settings) any { return s.Keepalive.Time }, time.Minute},
		{"GRPC_KEEPALIVE_TIMEOUT", "3s", func(s *Settings) any { return s.Keepalive.Timeout }, 3 * time.Second},
		{"MESHD_MAX_CONNECTION_AGE", "1h", func(s *Settings) any { return s.Keepalive.MaxConnectionAge }, time.Hour},
		{"MESHD_MAX_CONNECTION_AGE", "0", func(s *Settings) any { return s.Keepalive.MaxConnectionAge }, time.Duration(0)},
		{"MESHD_MAX_CONNECTION_AGE_GRACE", "30s", func(s *Settings) any { return s.Keepalive.MaxConnectionAgeGrace }, 30 * time.Second},
		{"KUBECONFIG", "/k/config", func(s *Settings) any { return s.Kubeconfig }, "/k/config"},
		{"POD_NAMESPACE", "mesh", func(s *Settings) any { return s.IstioNamespace }, "mesh"},
		{"PILOT_PUSH_THROTTLE", "", func(s *Settings) any { return s.PushThrottle }, AutoThrottle()}, // empty is unset
	} {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			s, err := Parse(nil, env(tc.name, tc.value))
			require.NoError(t, err)
			assert.Equal(t, tc.want, tc.got(s))
		})
	}
}

func TestInvalidValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{env: []string{"PILOT_PUSH_THROTTLE", "abc"}, want: `environment variable PILOT_PUSH_THROTTLE="abc": want a positive integer`},
		{env: []string{"PILOT_PUSH_THROTTLE", "-1"}, want: `PILOT_PUSH_THROTTLE="-1": want a positive integer`},
		{env: []string{"PILOT_DEBOUNCE_AFTER", "100"}, want: `PILOT_DEBOUNCE_AFTER="100": want a positive duration`},
		{env: []string{"PILOT_DEBOUNCE_AFTER", "0s"}, want: `PILOT_DEBOUNCE_AFTER="0s": want a positive duration`},
		{env: []string{"PILOT_DEBOUNCE_MAX", "-1s"}, want: `PILOT_DEBOUNCE_MAX="-1s": want a positive duration`},
		{env: []string{"PILOT_ENABLE_EDS_DEBOUNCE", "yes"}, want: `PILOT_ENABLE_EDS_DEBOUNCE="yes": want true or false`},
		{env: []string{"MESHD_PUSH_LEADING_EDGE", "on"}, want: `MESHD_PUSH_LEADING_EDGE="on": want true or false`},
		{env: []string{"PILOT_MAX_REQUESTS_PER_SECOND", "fast"}, want: `PILOT_MAX_REQUESTS_PER_SECOND="fast": want a positive number`},
		{env: []string{"PILOT_MAX_REQUESTS_PER_SECOND", "NaN"}, want: `PILOT_MAX_REQUESTS_PER_SECOND="NaN": want a positive number`},
		{env: []string{"MESHD_MAX_REQUESTS_BURST", "1.5"}, want: `MESHD_MAX_REQUESTS_BURST="1.5": want a positive integer`},
		{env: []string{"PILOT_FILTER_GATEWAY_CLUSTER_CONFIG", "maybe"}, want: `PILOT_FILTER_GATEWAY_CLUSTER_CONFIG="maybe": want true or false`},
		{env: []string{"PILOT_SCOPE_GATEWAY_TO_NAMESPACE", "1x"}, want: `PILOT_SCOPE_GATEWAY_TO_NAMESPACE="1x": want true or false`},
		{env: []string{"GRPC_KEEPALIVE_INTERVAL", "30"}, want: `GRPC_KEEPALIVE_INTERVAL="30": want a positive duration`},
		{env: []string{"GRPC_KEEPALIVE_TIMEOUT", "x"}, want: `GRPC_KEEPALIVE_TIMEOUT="x": want a positive duration`},
		{env: []string{"MESHD_MAX_CONNECTION_AGE", "-5m"}, want: `MESHD_MAX_CONNECTION_AGE="-5m": want a duration such as 30s or 30m, or 0 to disable`},
		{env: []string{"MESHD_MAX_CONNECTION_AGE_GRACE", "soon"}, want: `MESHD_MAX_CONNECTION_AGE_GRACE="soon": want a positive duration`},
		{args: []string{"--push-throttle", "abc"}, want: `invalid value "abc" for flag --push-throttle: want a positive integer`},
		{args: []string{"--debounce-max=1"}, want: `invalid value "1" for flag --debounce-max: want a positive duration`},
		{args: []string{"--log-level", "loud"}, want: `invalid value "loud" for flag --log-level: want debug, info, warn or error`},
		{args: []string{"--log-format", "xml"}, want: `invalid value "xml" for flag --log-format: want text or json`},
		{args: []string{"--poll-interval", "0"}, want: `--poll-interval: want a positive duration`},
		{args: []string{"--no-such-flag"}, want: "flag provided but not defined: -no-such-flag"},
		{args: []string{"extra"}, want: `unexpected argument "extra"`},
		{args: []string{"--config-dir", "d", "--kubeconfig", "k"}, want: "--config-dir and --kubeconfig are exclusive"},
	} {
		t.Run(strings.Join(append(tc.args, tc.env...), " "), func(t *testing.T) {
			_, err := Parse(tc.args, env(tc.env...))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestFlagWinsOverEnvironment(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		got  func(*Settings) any
		want any
	}{
		{[]string{"--debounce-after", "2s"}, []string{"PILOT_DEBOUNCE_AFTER", "1s"},
			func(s *Settings) any { return s.Debounce.DebounceAfter }, 2 * time.Second},
		{[]string{"--eds-debounce=false"}, []string{"PILOT_ENABLE_EDS_DEBOUNCE", "true"},
			func(s *Settings) any { return s.Debounce.EnableEDSDebounce }, false},
		{[]string{"--push-leading-edge"}, []string{"MESHD_PUSH_LEADING_EDGE", "false"},
			func(s *Settings) any { return s.Debounce.LeadingEdge }, true},
		{[]string{"--push-throttle=9"}, []string{"PILOT_PUSH_THROTTLE", "3"},
			func(s *Settings) any { return s.PushThrottle }, 9},
		{[]string{"--max-requests-per-second", "40"}, []string{"PILOT_MAX_REQUESTS_PER_SECOND", "20"},
			func(s *Settings) any { return s.MaxRequestsPerSecond }, 40.0},
		{[]string{"--keepalive-interval", "5s"}, []string{"GRPC_KEEPALIVE_INTERVAL", "abc"}, // an overridden variable is not read
			func(s *Settings) any { return s.Keepalive.Time }, 5 * time.Second},
		{[]string{"--kubeconfig", "/flag"}, []string{"KUBECONFIG", "/env"},
			func(s *Settings) any { return s.Kubeconfig }, "/flag"},
		{[]string{"--istio-namespace", "a"}, []string{"POD_NAMESPACE", "b"},
			func(s *Settings) any { return s.IstioNamespace }, "a"},
		// $KUBECONFIG does not conflict with --config-dir: it is ignored.
		{[]string{"--config-dir", "hack/demo"}, []string{"KUBECONFIG", "/env"},
			func(s *Settings) any { return s.Kubeconfig + "|" + s.Source() }, "|dir:hack/demo"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			s, err := Parse(tc.args, env(tc.env...))
			require.NoError(t, err)
			assert.Equal(t, tc.want, tc.got(s))
		})
	}
}

func TestFlagsSetEverything(t *testing.T) {
	s, err := Parse([]string{
		"--config-dir", "dir", "--mesh-config", "mesh.yaml", "--mesh-configmap", "istio-1",
		"--xds-address", ":1", "--admin-address", ":2", "--domain", "example.org",
		"--log-level", "debug", "--log-format", "json", "--poll-interval", "1s",
		"--debounce-max", "2s", "--max-requests-burst", "3", "--filter-gateway-cluster-config",
		"--scope-gateway-to-namespace",
		"--keepalive-timeout", "4s", "--max-connection-age", "5m", "--max-connection-age-grace", "6s",
	}, env())
	require.NoError(t, err)
	assert.Equal(t, "dir", s.ConfigDir)
	assert.Equal(t, "mesh.yaml", s.MeshConfigFile)
	assert.Equal(t, "istio-1", s.MeshConfigMap)
	assert.Equal(t, ":1", s.XDSAddress)
	assert.Equal(t, ":2", s.AdminAddress)
	assert.Equal(t, "example.org", s.Domain)
	assert.Equal(t, slog.LevelDebug, s.LogLevel)
	assert.Equal(t, "json", s.LogFormat)
	assert.Equal(t, time.Second, s.PollInterval)
	assert.Equal(t, 2*time.Second, s.Debounce.DebounceMax)
	assert.Equal(t, 3, s.MaxRequestsBurst)
	assert.True(t, s.FilterGatewayClusterConfig)
	assert.True(t, s.ScopeGatewayToNamespace)
	assert.Equal(t, Keepalive{Time: 30 * time.Second, Timeout: 4 * time.Second, MaxConnectionAge: 5 * time.Minute,
		MaxConnectionAgeGrace: 6 * time.Second}, s.Keepalive)

	var buf bytes.Buffer
	s.Logger(&buf).Debug("hello")
	assert.Contains(t, buf.String(), `"msg":"hello"`)
}

// envVars are the variables meshd honours; istiod's names where istiod has
// the knob.
var envVars = []string{
	"PILOT_DEBOUNCE_AFTER", "PILOT_DEBOUNCE_MAX", "PILOT_ENABLE_EDS_DEBOUNCE", "PILOT_PUSH_THROTTLE",
	"PILOT_MAX_REQUESTS_PER_SECOND", "PILOT_FILTER_GATEWAY_CLUSTER_CONFIG", "PILOT_SCOPE_GATEWAY_TO_NAMESPACE",
	"MESHD_PUSH_LEADING_EDGE",
	"MESHD_MAX_REQUESTS_BURST", "GRPC_KEEPALIVE_INTERVAL", "GRPC_KEEPALIVE_TIMEOUT",
	"MESHD_MAX_CONNECTION_AGE", "MESHD_MAX_CONNECTION_AGE_GRACE", "KUBECONFIG", "POD_NAMESPACE",
	"XDS_AUTH", "PILOT_CERT_PROVIDER", "ISTIOD_CUSTOM_HOST", "ROOT_CA_DIR", "DEFAULT_WORKLOAD_CERT_TTL",
	"MAX_WORKLOAD_CERT_TTL", "TOKEN_AUDIENCES", "CA_TRUSTED_NODE_ACCOUNTS", "DEBUG_ENDPOINT_AUTH_ALLOWED_NAMESPACES",
	"MESHD_INJECTOR_ADDRESS", "INJECTION_WEBHOOK_CONFIG_NAME", "REVISION", "ENABLE_NATIVE_SIDECARS", "CLUSTER_ID",
	"PILOT_JWT_ENABLE_REMOTE_JWKS", "PILOT_JWT_PUB_KEY_REFRESH_INTERVAL", "JWKS_RESOLVER_INSECURE_SKIP_VERIFY",
}

func TestHelp(t *testing.T) {
	_, err := Parse([]string{"--help"}, env())
	assert.ErrorIs(t, err, ErrHelp)
	_, err = Parse([]string{"-h"}, env())
	assert.ErrorIs(t, err, ErrHelp)

	var buf bytes.Buffer
	Usage(&buf)
	help := buf.String()
	for _, v := range envVars {
		assert.Contains(t, help, "(env "+v+")")
	}
	var withEnv int
	for _, o := range options(defaults()) {
		assert.Contains(t, help, "\n  --"+o.flag)
		if o.env != "" {
			withEnv++
		}
	}
	assert.Equal(t, len(envVars), withEnv, "envVars is out of date")
	for _, s := range []string{"default: 100ms", "default: 127.0.0.1:15014", "min(15+5×GOMAXPROCS, 100)", "istiod: PILOT_PUSH_THROTTLE"} {
		assert.Contains(t, help, s)
	}
	for _, line := range strings.Split(help, "\n") {
		assert.LessOrEqual(t, len([]rune(line)), 100, "help line too long: %q", line)
	}
}

// TestREADMEDocumentsEverySetting keeps README.md's Configuration section
// in step with the settings.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	readme := string(b)
	for _, o := range options(defaults()) {
		assert.True(t, strings.Contains(readme, "`--"+o.flag), "README.md lacks --%s", o.flag)
		if o.env != "" {
			assert.True(t, strings.Contains(readme, "`"+o.env+"`"), "README.md lacks %s", o.env)
		}
	}
}

// TestJWTSettings: istiod's variables set the JWKS resolver; fetch modes
// meshd does not have are refused, naming the variable.
func TestJWTSettings(t *testing.T) {
	s, err := Parse(nil, env("PILOT_JWT_PUB_KEY_REFRESH_INTERVAL", "5m", "JWKS_RESOLVER_INSECURE_SKIP_VERIFY", "true",
		"PILOT_JWT_ENABLE_REMOTE_JWKS", "istiod"))
	require.NoError(t, err)
	assert.Equal(t, JWT{RemoteJWKS: "istiod", RefreshInterval: 5 * time.Minute, CABundle: "/cacerts/extra.pem", InsecureSkipVerify: true}, s.JWT)
	_, err = Parse(nil, env("PILOT_JWT_ENABLE_REMOTE_JWKS", "envoy"))
	require.ErrorContains(t, err, `PILOT_JWT_ENABLE_REMOTE_JWKS="envoy": only false or istiod is supported`)
	_, err = Parse([]string{"--jwt-pub-key-refresh-interval", "0s"}, env())
	require.ErrorContains(t, err, "want a positive duration")
}
