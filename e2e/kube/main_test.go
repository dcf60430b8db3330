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
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/e2e/testenv"
)

var (
	env      *testenv.Env
	meshdBin string
)

func TestMain(m *testing.M) {
	bin, cleanup, err := harness.Binary() // built outside the namespace, which has no network
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var code int
	if os.Getenv("MESHD_NETNS_CIDR") == "" {
		code = inNetns(bin)
	} else {
		meshdBin = bin
		os.Setenv("MESHD_REQUIRE_TESTENV", "1") // missing binaries fail the suite
		code = testenv.Main(m, testenv.Options{}, &env)
	}
	cleanup()
	os.Exit(code)
}

// inNetns runs this test binary again, with the same flags, inside
// hack/netns-run.sh and returns its exit code.
func inNetns(bin string) int {
	root, err := testenv.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd := exec.Command(filepath.Join(root, "hack", "netns-run.sh"), os.Args...)
	cmd.Env = append(os.Environ(), "MESHD_BIN="+bin)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode()
	case err != nil:
		fmt.Fprintln(os.Stderr, "running the suite in a network namespace:", err)
		return 1
	}
	return 0
}
