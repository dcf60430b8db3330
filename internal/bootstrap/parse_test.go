package bootstrap

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
)

// env is a getenv over a map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseDefaults(t *testing.T) {
	o, err := Parse(nil, env(nil), "laptop")
	require.NoError(t, err)
	require.Equal(t, &Options{
		Type: model.SidecarProxy, XDSAddress: "127.0.0.1:15010", XDSAPI: "delta",
		Namespace: "default", PodName: "laptop", IPs: []string{"127.0.0.1"}, Labels: map[string]string{},
		ServiceAccount: "default", ClusterID: "Kubernetes", WorkloadName: "laptop", IstioVersion: DefaultIstioVersion,
		Domain: "cluster.local", MeshID: "cluster.local", AdminAddress: "127.0.0.1",
		AdminPort: 15000, StatsPort: 15090, ReadinessPort: 15021, Format: "json",
	}, o)
	require.Equal(t, "sidecar~127.0.0.1~laptop.default~default.svc.cluster.local", o.EffectiveNodeID())
	require.Empty(t, o.Warnings(), "the default admin address is loopback")
}

func TestParseEnvironmentAndFlags(t *testing.T) {
	vars := map[string]string{
		"POD_NAMESPACE": "shop", "POD_NAME": "reviews-v1-7d4f8c9b6-x2x9z", "INSTANCE_IP": "10.1.2.3",
		"SERVICE_ACCOUNT": "reviews", "ISTIO_META_CLUSTER_ID": "dc1", "ISTIO_META_MESH_ID": "bank",
	}
	o, err := Parse([]string{"--labels", "app=reviews,version=v1,pod-template-hash=7d4f8c9b6"}, env(vars), "ignored")
	require.NoError(t, err)
	require.Equal(t, "shop", o.Namespace)
	require.Equal(t, "reviews-v1-7d4f8c9b6-x2x9z", o.PodName)
	require.Equal(t, []string{"10.1.2.3"}, o.IPs)
	require.Equal(t, "reviews", o.ServiceAccount)
	require.Equal(t, "dc1", o.ClusterID)
	require.Equal(t, "bank", o.MeshID)
	require.Equal(t, "reviews-v1", o.WorkloadName, "Deployment name: pod name less -<pod-template-hash>-<suffix>")
	require.Equal(t, map[string]string{"app": "reviews", "version": "v1"}, o.Labels, "pod-template-hash left out, as pilot-agent")

	// A flag wins over its variable; an empty variable counts as unset.
	vars["POD_NAME"] = ""
	o, err = Parse([]string{"--namespace", "bank", "--ip", "10.0.0.9, fd00::9,10.0.0.9"}, env(vars), "host-1")
	require.NoError(t, err)
	require.Equal(t, "bank", o.Namespace)
	require.Equal(t, "host-1", o.PodName)
	require.Equal(t, []string{"10.0.0.9", "fd00::9"}, o.IPs, "duplicates dropped, order kept")
	require.Equal(t, "sidecar~10.0.0.9~host-1.bank~bank.svc.cluster.local", o.EffectiveNodeID(), "first IP only")
}

func TestWorkloadName(t *testing.T) {
	for _, tc := range []struct{ pod, hash, want string }{
		{"frontend-1", "", "frontend-1"},
		{"frontend-5d9c7b8f4-abcde", "5d9c7b8f4", "frontend"},
		{"my-app-v2-5d9c7b8f4-abcde", "5d9c7b8f4", "my-app-v2"},
		{"frontend-abcde", "5d9c7b8f4", "frontend-abcde"}, // not a Deployment's pod name
		{"-5d9c7b8f4-abcde", "5d9c7b8f4", "-5d9c7b8f4-abcde"},
	} {
		require.Equal(t, tc.want, workloadName(tc.pod, tc.hash), "%s %s", tc.pod, tc.hash)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		vars map[string]string
		want string // substring of the error
	}{
		{"type", []string{"--type", "gateway"}, nil, `flag --type: want sidecar or router`},
		{"xds api", []string{"--xds-api", "incremental"}, nil, `flag --xds-api: want delta or sotw`},
		{"xds address no port", []string{"--xds-address", "meshd"}, nil, `flag --xds-address: want host:port`},
		{"xds address bad port", []string{"--xds-address", "meshd:0"}, nil, `flag --xds-address: port "0"`},
		{"xds address bad host", []string{"--xds-address", "me_shd:15010"}, nil, `flag --xds-address: host "me_shd"`},
		{"namespace", []string{"--namespace", "Shop"}, nil, `flag --namespace: want a DNS label`},
		{"namespace env", nil, map[string]string{"POD_NAMESPACE": "a.b"}, `environment variable POD_NAMESPACE="a.b" (for --namespace)`},
		{"pod name", []string{"--pod-name", "a~b"}, nil, `flag --pod-name: want a non-empty value without '~'`},
		{"ip", []string{"--ip", "10.0.0.1,nope"}, nil, `flag --ip: "nope" is not an IP address`},
		{"ip env", nil, map[string]string{"INSTANCE_IP": "pod"}, `environment variable INSTANCE_IP="pod" (for --ip)`},
		{"labels", []string{"--labels", "app"}, nil, `flag --labels: "app" is not key=value`},
		{"labels dup", []string{"--labels", "a=1,a=2"}, nil, `flag --labels: label "a" given twice`},
		{"empty cluster id", []string{"--cluster-id", ""}, nil, `flag --cluster-id: want a non-empty value`},
		{"domain", []string{"--domain", "cluster..local"}, nil, `flag --domain: want a DNS name`},
		{"generator grpc", []string{"--generator", "grpc"}, nil, `flag --generator: "grpc" is for proxyless gRPC clients`},
		{"locality", []string{"--locality", "a/b/c/d"}, nil, `flag --locality: want region`},
		{"admin address", []string{"--admin-address", "localhost"}, nil, `flag --admin-address: want an IP address`},
		{"admin port", []string{"--admin-port", "70000"}, nil, `flag --admin-port: want a port number`},
		{"stats port", []string{"--stats-port", "x"}, nil, `flag --stats-port: want a port number`},
		{"readiness port", []string{"--readiness-port", "0"}, nil, `flag --readiness-port: want a port number`},
		{"port clash", []string{"--readiness-port", "15000"}, nil, `--admin-port and --readiness-port are both 15000`},
		{"format", []string{"--format", "toml"}, nil, `flag --format: want json or yaml`},
		{"admin port virtualOutbound", []string{"--admin-port", "15001"}, nil, `invalid value "15001" for flag --admin-port: port 15001 is meshd's virtualOutbound`},
		{"stats port virtualInbound", []string{"--stats-port", "15006"}, nil, `invalid value "15006" for flag --stats-port: port 15006 is meshd's virtualInbound`},
		{"readiness port virtualOutbound", []string{"--readiness-port", "15001"}, nil, `invalid value "15001" for flag --readiness-port: port 15001 is meshd's virtualOutbound`},
		{"node id shape", []string{"--node-id", "sidecar~pod"}, nil, `flag --node-id: node ID "sidecar~pod": want 4 fields`},
		{"node id ip", []string{"--node-id", "sidecar~pod~a.b~b.svc.cluster.local"}, nil, `flag --node-id: node ID "sidecar~pod~a.b~b.svc.cluster.local": "pod" is not an IP address`},
		{"node id type", []string{"--node-id", "router~10.0.0.1~a.b~b.svc.cluster.local"}, nil, `--node-id "router~10.0.0.1~a.b~b.svc.cluster.local" is a router but --type is sidecar`},
		{"unknown flag", []string{"--pod", "x"}, nil, `flag provided but not defined: -pod`},
		{"argument", []string{"sidecar"}, nil, `unexpected argument "sidecar"`},
		{"no pod name", nil, nil, `--pod-name not given`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := "host-1"
			if tc.name == "no pod name" {
				host = ""
			}
			_, err := Parse(tc.args, env(tc.vars), host)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.want)
			require.ErrorIs(t, err, ErrUsage, "a usage error (exit status 2)")
		})
	}
}

// An admin address other than loopback is allowed, with a warning: the
// admin has no authentication (/quitquitquit, /runtime_modify).
func TestParseAdminAddressWarning(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "127.0.0.2", "::1"} {
		o, err := Parse([]string{"--admin-address", addr}, env(nil), "h")
		require.NoError(t, err)
		require.Empty(t, o.Warnings(), addr)
	}
	for _, addr := range []string{"10.0.0.5", "0.0.0.0", "fd00::5", "::"} {
		o, err := Parse([]string{"--admin-address", addr, "--admin-port", "16000"}, env(nil), "h")
		require.NoError(t, err, "%s is allowed", addr)
		require.Equal(t, addr, o.AdminAddress)
		w := o.Warnings()
		require.Len(t, w, 1, addr)
		for _, want := range []string{"--admin-address " + addr + " is not a loopback address", "port 16000", "/quitquitquit", "/runtime_modify"} {
			require.Contains(t, w[0], want)
		}
	}
}

func TestParseHelp(t *testing.T) {
	_, err := Parse([]string{"--help"}, env(nil), "h")
	require.True(t, errors.Is(err, ErrHelp))
}

func TestUsageListsEveryFlagWithDefault(t *testing.T) {
	var b strings.Builder
	Usage(&b)
	help := b.String()
	for _, o := range options(defaults()) {
		i := strings.Index(help, "\n  --"+o.flag+" ")
		if o.arg == "" { // a switch such as --tls: the name ends the line
			i = strings.Index(help, "\n  --"+o.flag+"\n")
		}
		require.GreaterOrEqual(t, i, 0, "--%s missing from help", o.flag)
		rest := help[i+1:]
		if j := strings.Index(rest, "\n\n"); j >= 0 {
			rest = rest[:j]
		}
		require.Contains(t, rest, "default: ", "--%s has no default in help", o.flag)
	}
	for _, want := range []string{"default: 127.0.0.1:15010", "default: delta", "default: 15000", "default: 15090", "default: 15021",
		"default: json", "(env POD_NAMESPACE)", "envoy -c <(meshd bootstrap"} {
		require.Contains(t, help, want)
	}
}
