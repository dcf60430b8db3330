// Package testenv runs a real Kubernetes API for meshd's e2e tests: an etcd
// and a kube-apiserver built from the Go module proxy by `make testenv`
// (hack/tools/, cached under bin/), listening on free loopback ports, with
// Istio's CRDs installed.
//
// Start brings one up in a few seconds; share it per test package from
// TestMain with Main, and have each test call Need. The API server trusts a
// static admin token (group system:masters) and uses RBAC; Env.Kubeconfig is
// a kubeconfig file for that user, and Env.Do is a small JSON client.
//
// Kubernetes refuses loopback addresses in EndpointSlices, so suites that
// write endpoints run inside their own network namespace with
// hack/netns-run.sh, which gives lo the range 10.250.0.0/16.
//
// Environment:
//
//	MESHD_TESTENV_BIN      directory holding kube-apiserver and etcd (default <repo>/bin)
//	MESHD_TESTENV_CRDS     CRD YAML file to install (default istio.io/api's)
//	MESHD_REQUIRE_TESTENV  if set, missing binaries fail instead of skipping
//	MESHD_TESTENV_KEEP     if set, Stop keeps the temp dir (logs, data, certs)
//	MESHD_TESTENV_LOGS     if set, DumpLogs logs even when the test passed
package testenv
