// Package kube is meshd's end-to-end suite against a real Kubernetes API:
// etcd and kube-apiserver from e2e/testenv, the real meshd binary watching
// them with --kubeconfig, real gRPC backends on 10.250.x addresses and
// grpc-go's real xDS client. It must run inside the network namespace made
// by hack/netns-run.sh (make e2e does this), because the API server refuses
// loopback addresses in EndpointSlices.
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
)

func TestMain(m *testing.M) {
	bin, cleanup, err := harness.Binary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	meshdBin = bin
	code := testenv.Main(m, testenv.Options{}, &env)
	cleanup()
	os.Exit(code)
}
