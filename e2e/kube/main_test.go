// Package kube is meshd's end-to-end suite against a real Kubernetes API:
// etcd and kube-apiserver from e2e/testenv, the real meshd binary watching
// them with --kubeconfig, real gRPC backends on 10.250.x addresses and
// grpc-go's real xDS client. It runs inside the network namespace made by
// hack/netns-run.sh, because the API server refuses loopback addresses in
// EndpointSlices: make e2e-kube starts it there, and a plain `go test`
// re-runs itself there. It never skips: without the namespace or the test
// API server binaries (make testenv) it fails.
package kube

import (
	"fmt"
	"os"
	"testing"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/e2e/testenv"
)

var (
	env      *testenv.Env
	meshdBin string
	envoyBin string // the real Envoy of the Envoy suite (envoy_*_test.go)
	// faultsBin is meshd built with -tags meshd_faults (xds/faults_inject.go).
	faultsBin string
)

func TestMain(m *testing.M) {
	bin, cleanup, err := harness.Binary() // built outside the namespace, which has no network
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	faults, cleanupFaults, err := harness.BinaryTagged("MESHD_FAULTS_BIN", "meshd_faults")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var code int
	if !harness.InNetns() {
		code = harness.RerunInNetns("MESHD_BIN="+bin, "MESHD_FAULTS_BIN="+faults)
	} else {
		meshdBin, faultsBin = bin, faults
		if envoyBin, err = harness.EnvoyBinary(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		v, err := harness.EnvoyVersion(envoyBin)
		if err != nil {
			fmt.Fprintln(os.Stderr, "envoy --version:", err, v)
			os.Exit(1)
		}
		fmt.Println("envoy --version:", v)
		os.Setenv("MESHD_REQUIRE_TESTENV", "1") // missing binaries fail the suite
		code = testenv.Main(m, testenv.Options{}, &env)
	}
	cleanup()
	cleanupFaults()
	os.Exit(code)
}
