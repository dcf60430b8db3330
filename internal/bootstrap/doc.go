// Package bootstrap owns `meshd bootstrap`: it builds the Envoy bootstrap a
// sidecar or gateway needs to take its config from meshd over ADS, in place
// of the bootstrap Istio's pilot-agent writes.
//
// The node ID and node metadata are pilot-agent's (pkg/bootstrap/config.go,
// pkg/model/proxy.go and the injection templates in istio/istio), so meshd's
// model.ParseProxy, and istiod, read them as they read a real sidecar's. The
// static part follows Istio's tools/packaging/common/envoy_bootstrap.json:
// the xds-grpc cluster, the prometheus_stats cluster and the 15090 and 15021
// listeners. There is no pilot-agent between Envoy and meshd: xds-grpc dials
// meshd directly, plaintext or, with --tls, over TLS to its secure port with
// the service-account token as bearer metadata (tls.go), and readiness is
// answered by Envoy's own admin /ready.
//
// Parse turns command-line arguments and environment into validated Options;
// Build turns Options into a validated envoy.config.bootstrap.v3.Bootstrap;
// Marshal prints it as JSON (the default: Envoy reads a -c file without a
// .yaml extension, such as /dev/fd/63, as JSON) or YAML; WriteOutput writes
// it to --output (mode 0600 when it holds a token). Besides that, the only
// I/O here is Parse reading the --root-cert and --token-file files with
// --tls; what is allowed but unsafe (a non-loopback admin address) is in
// Options.Warnings for the command to print.
package bootstrap
