package bootstrap

import (
	"flag"

	"github.com/meshd/meshd/internal/model"
)

// Defaults of the flags that have a fixed one.
const (
	// DefaultXDSAddress is meshd's plaintext ADS port on this host.
	DefaultXDSAddress = defaultXDSHost + ":15010"
	// DefaultSecureXDSAddress replaces DefaultXDSAddress with --tls: meshd's
	// secure ADS port (istiod's 15012) on the same host.
	DefaultSecureXDSAddress = defaultXDSHost + ":15012"
	// DefaultTLSServerName is the SNI sent to the secure port and the DNS
	// SAN its serving certificate must have: istiod's service name, which
	// meshd's certificate carries as istiod's does.
	DefaultTLSServerName  = "istiod.istio-system.svc"
	DefaultXDSAPI         = XDSAPIDelta
	DefaultServiceAccount = "default"
	DefaultClusterID      = "Kubernetes"
	// DefaultIstioVersion is the ISTIO_VERSION the proxy reports: meshd does
	// not gate features on it, but tools that read node metadata do.
	DefaultIstioVersion  = "1.29.0"
	DefaultDomain        = "cluster.local"
	DefaultMeshID        = "cluster.local"
	DefaultAdminAddress  = "127.0.0.1"
	DefaultAdminPort     = 15000
	DefaultStatsPort     = 15090
	DefaultReadinessPort = 15021
	DefaultNamespace     = "default"
	DefaultIP            = "127.0.0.1"
)

// defaultXDSHost is the host of both default xDS addresses.
const defaultXDSHost = "127.0.0.1"

// xDS transport variants of --xds-api.
const (
	// XDSAPIDelta is incremental xDS (ads_config api_type DELTA_GRPC), what
	// Istio 1.22 and later sidecars use.
	XDSAPIDelta = "delta"
	// XDSAPISotW is state-of-the-world xDS (api_type GRPC).
	XDSAPISotW = "sotw"
)

// Output formats of --format.
const (
	// FormatJSON is the default: Envoy picks its parser by the file's
	// extension and reads a file without a known one (such as /dev/fd/63 of
	// `envoy -c <(meshd bootstrap)`) as JSON. JSON is also valid YAML.
	FormatJSON = "json"
	// FormatYAML must be written to a file named *.yaml or *.yml for Envoy.
	FormatYAML = "yaml"
)

// DefaultFormat is --format's default.
const DefaultFormat = FormatJSON

// reservedPorts are the ports of meshd's sidecar listeners that iptables
// redirects traffic to: the admin, stats and readiness listeners may not
// take them.
var reservedPorts = map[uint32]string{
	15001: "virtualOutbound (where iptables redirects outbound traffic)",
	15006: "virtualInbound (where iptables redirects inbound traffic)",
}

// Options is everything `meshd bootstrap` needs. Parse fills and validates
// it; Build reads it.
type Options struct {
	// Type is the proxy role: model.SidecarProxy or model.Router (--type).
	Type model.NodeType
	// XDSAddress is meshd's ADS address, host:port: its plaintext port, or
	// its secure port with TLS (--xds-address).
	XDSAddress string
	// TLS connects to meshd's secure port: TLS verified against RootCert
	// and TLSServerName, every stream carrying Token (--tls). When false,
	// the other TLS fields are empty.
	TLS bool
	// RootCert is the absolute path of the PEM mesh root Envoy trusts; Envoy
	// reads it when it starts (--root-cert).
	RootCert string
	// TokenFile holds the service-account token (--token-file).
	TokenFile string
	// Token is TokenFile's content, trimmed, read by Parse. It is a secret:
	// the bootstrap carries it as the xDS streams' authorization metadata.
	Token string
	// TLSServerName is the SNI and the DNS SAN the serving certificate must
	// have (--tls-server-name).
	TLSServerName string
	// XDSAPI is XDSAPIDelta or XDSAPISotW (--xds-api).
	XDSAPI string
	// Namespace is the workload's namespace (--namespace).
	Namespace string
	// PodName is the pod's name (--pod-name).
	PodName string
	// IPs are the proxy's addresses, the pod IP first (--ip).
	IPs []string
	// Labels are the workload's labels (--labels).
	Labels map[string]string
	// ServiceAccount is the pod's service account (--service-account).
	ServiceAccount string
	// ClusterID is the Kubernetes cluster's name in the mesh (--cluster-id).
	ClusterID string
	// WorkloadName is the owning workload, e.g. the Deployment (--workload-name).
	WorkloadName string
	// IstioVersion is reported as ISTIO_VERSION (--istio-version).
	IstioVersion string
	// Domain is the cluster DNS domain (--domain).
	Domain string
	// MeshID is the mesh's ID (--mesh-id).
	MeshID string
	// Generator is the GENERATOR metadata; "" for Envoy (--generator).
	Generator string
	// NodeID, when set, replaces the computed node ID (--node-id).
	NodeID string
	// Locality is region[/zone[/subzone]], or "" for none (--locality).
	Locality string
	// AdminAddress is the IP Envoy's admin listens on (--admin-address).
	AdminAddress string
	// AdminPort is Envoy's admin port (--admin-port).
	AdminPort uint32
	// StatsPort is the Prometheus listener's port (--stats-port).
	StatsPort uint32
	// ReadinessPort is the /healthz/ready listener's port (--readiness-port).
	ReadinessPort uint32
	// Format is FormatJSON (the default) or FormatYAML (--format).
	Format string
	// Output is the file to write, or "" / "-" for standard output (--output).
	Output string
}

// option is one flag of meshd bootstrap.
type option struct {
	flag  string     // flag name, without dashes
	arg   string     // placeholder for the value in help
	env   string     // environment variable setting it; "" for none
	value flag.Value // bound to its Options field
	def   string     // default as shown in help; "" means the value's initial text
	usage string     // what it does
}

// defaults returns Options holding every fixed default. The defaults that
// depend on the environment or on other flags are filled in by Parse.
func defaults() *Options {
	return &Options{
		Type:           model.SidecarProxy,
		XDSAddress:     DefaultXDSAddress,
		XDSAPI:         DefaultXDSAPI,
		TLSServerName:  DefaultTLSServerName,
		Namespace:      DefaultNamespace,
		IPs:            []string{DefaultIP},
		Labels:         map[string]string{},
		ServiceAccount: DefaultServiceAccount,
		ClusterID:      DefaultClusterID,
		IstioVersion:   DefaultIstioVersion,
		Domain:         DefaultDomain,
		MeshID:         DefaultMeshID,
		AdminAddress:   DefaultAdminAddress,
		AdminPort:      DefaultAdminPort,
		StatsPort:      DefaultStatsPort,
		ReadinessPort:  DefaultReadinessPort,
		Format:         DefaultFormat,
	}
}

// options returns the table of every flag, bound to o's fields, in help
// order.
func options(o *Options) []option {
	typ := (*string)(&o.Type)
	return []option{
		{flag: "type", arg: "TYPE", value: stringValue{p: typ, check: oneOf(string(model.SidecarProxy), string(model.Router))},
			usage: "proxy role, the first field of the node ID: sidecar, or router for an ingress/egress gateway"},
		{flag: "xds-address", arg: "HOST:PORT", value: stringValue{p: &o.XDSAddress, check: hostPort},
			def: DefaultXDSAddress + ", or " + DefaultSecureXDSAddress + " with --tls",
			usage: "meshd's ADS address: its plaintext port, or its secure port with --tls; " +
				"an IP gives a STATIC xds-grpc cluster, a DNS name a STRICT_DNS one"},
		{flag: "tls", value: boolValue{p: &o.TLS},
			usage: "connect to meshd's secure port (istiod's 15012): TLS verified against --root-cert and --tls-server-name, " +
				"each stream carrying --token-file's token as authorization: Bearer metadata"},
		{flag: "root-cert", arg: "FILE", env: "XDS_ROOT_CA", value: stringValue{p: &o.RootCert}, def: "none; required with --tls",
			usage: "PEM file of the mesh root certificate (root-cert.pem of the istio-ca-root-cert ConfigMap) that signs " +
				"meshd's serving certificate; Envoy reads it when it starts"},
		{flag: "token-file", arg: "FILE", value: stringValue{p: &o.TokenFile}, def: "none; required with --tls",
			usage: "file holding the Kubernetes service-account token, audience istio-ca " +
				"(kubectl create token SA -n NS --audience istio-ca). It is read now and copied into the bootstrap, " +
				"which is then a secret (--output writes it with mode 0600); once the token expires Envoy cannot " +
				"reconnect: generate the bootstrap again (pilot-agent, which renews tokens, is the production path)"},
		{flag: "tls-server-name", arg: "NAME", env: "ISTIOD_SAN", value: stringValue{p: &o.TLSServerName, check: dnsName},
			usage: "with --tls, the SNI sent and the DNS SAN meshd's serving certificate must have, " +
				"e.g. istiod.<namespace>.svc"},
		{flag: "xds-api", arg: "API", value: stringValue{p: &o.XDSAPI, check: oneOf(XDSAPIDelta, XDSAPISotW)},
			usage: "xDS flavour: delta (ads_config api_type DELTA_GRPC, as Istio 1.22+ sidecars) or sotw (GRPC, state of the world)"},
		{flag: "namespace", arg: "NS", env: "POD_NAMESPACE", value: stringValue{p: &o.Namespace, check: dnsLabel},
			usage: "the workload's namespace (NAMESPACE metadata, and in the node ID)"},
		{flag: "pod-name", arg: "NAME", env: "POD_NAME", value: stringValue{p: &o.PodName, check: nodeField}, def: "this host's name",
			usage: "the pod's name (NAME metadata; the node ID holds <pod-name>.<namespace>)"},
		{flag: "ip", arg: "IP[,IP...]", env: "INSTANCE_IP", value: ipsValue{p: &o.IPs},
			usage: "the proxy's IP addresses, the pod IP first: the first is in the node ID, all are INSTANCE_IPS"},
		{flag: "labels", arg: "K=V[,K=V...]", value: labelsValue{p: &o.Labels}, def: "none",
			usage: "the workload's labels (LABELS metadata): they select Sidecars, inbound config and subsets; " +
				"pod-template-hash is used for --workload-name and left out, as pilot-agent does"},
		{flag: "service-account", arg: "NAME", env: "SERVICE_ACCOUNT", value: stringValue{p: &o.ServiceAccount},
			usage: "the pod's service account (SERVICE_ACCOUNT metadata)"},
		{flag: "cluster-id", arg: "ID", env: "ISTIO_META_CLUSTER_ID", value: stringValue{p: &o.ClusterID},
			usage: "the cluster's name in the mesh (CLUSTER_ID metadata)"},
		{flag: "workload-name", arg: "NAME", env: "ISTIO_META_WORKLOAD_NAME", value: stringValue{p: &o.WorkloadName, check: nodeField},
			def:   "the pod name less -<pod-template-hash>-<suffix> when that label is given, else the pod name",
			usage: "the owning workload, e.g. the Deployment (WORKLOAD_NAME metadata; node cluster <workload>.<namespace> when there is no app label)"},
		{flag: "istio-version", arg: "VERSION", value: stringValue{p: &o.IstioVersion},
			usage: "Istio version the proxy reports (ISTIO_VERSION metadata)"},
		{flag: "domain", arg: "DOMAIN", value: stringValue{p: &o.Domain, check: dnsName},
			usage: "cluster DNS domain; the node ID ends in <namespace>.svc.<domain>"},
		{flag: "mesh-id", arg: "ID", env: "ISTIO_META_MESH_ID", value: stringValue{p: &o.MeshID},
			usage: "the mesh's ID (MESH_ID metadata; Istio defaults it to the trust domain)"},
		{flag: "generator", arg: "NAME", value: stringValue{p: &o.Generator, check: notGRPC}, def: "none (Envoy)",
			usage: `GENERATOR metadata; "grpc" is refused: proxyless gRPC clients do not run Envoy`},
		{flag: "node-id", arg: "ID", value: stringValue{p: &o.NodeID}, def: "<type>~<ip>~<pod-name>.<namespace>~<namespace>.svc.<domain>",
			usage: "replace the computed node ID; it must still be type~ip~pod.namespace~domain with --type's type"},
		{flag: "locality", arg: "REGION[/ZONE[/SUBZONE]]", value: stringValue{p: &o.Locality, check: locality}, def: "none",
			usage: "node locality, for locality-aware load balancing"},
		{flag: "admin-address", arg: "IP", value: stringValue{p: &o.AdminAddress, check: ipAddress},
			usage: "IP Envoy's admin interface listens on; keep it on loopback: the admin has no authentication " +
				"(/quitquitquit stops Envoy, /runtime_modify changes it), so any other address is allowed with a warning only " +
				"(e.g. in a private network namespace)"},
		{flag: "admin-port", arg: "PORT", value: portValue{p: &o.AdminPort},
			usage: "Envoy's admin port (config_dump, stats, /ready); not 15001 or 15006, meshd's virtualOutbound and virtualInbound"},
		{flag: "stats-port", arg: "PORT", value: portValue{p: &o.StatsPort},
			usage: "port of the Prometheus listener on all interfaces, serving /stats/prometheus from the admin; not 15001 or 15006"},
		{flag: "readiness-port", arg: "PORT", value: portValue{p: &o.ReadinessPort},
			usage: "port of the readiness listener on all interfaces: /healthz/ready answers 200 once Envoy has " +
				"its first config from meshd (Envoy's admin /ready; there is no pilot-agent); not 15001 or 15006"},
		{flag: "format", arg: "FORMAT", value: stringValue{p: &o.Format, check: oneOf(FormatJSON, FormatYAML)},
			usage: "output format: json or yaml. Envoy parses -c FILE by its extension (.yaml or .yml: YAML; " +
				"anything else, /dev/fd/63 of envoy -c <(meshd bootstrap) included: JSON), so yaml needs a file named *.yaml"},
		{flag: "output", arg: "FILE", value: stringValue{p: &o.Output}, def: "standard output",
			usage: "write the bootstrap to FILE"},
	}
}
