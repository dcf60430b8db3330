//go:build !meshd_faults

package xds

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

// faultEnv is the variable that turns faults_inject.go's fault on in a
// test build (-tags meshd_faults).
const faultEnv = "MESHD_FAULT_DUPLICATE_DOMAIN"

// TestNoOutputFaultInProductionBuild: a normal build (no meshd_faults tag,
// as `go build ./cmd/meshd`) carries no fault hook, and setting the test
// build's variable does not add one: the test runs itself again with
// faultEnv set.
func TestNoOutputFaultInProductionBuild(t *testing.T) {
	require.Nil(t, outputFault, "outputFault is set in a build without the meshd_faults tag")
	if os.Getenv(faultEnv) != "" {
		return // the run with the variable set
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestNoOutputFaultInProductionBuild$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), faultEnv+"=reviews.shop.svc.cluster.local")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "with %s set:\n%s", faultEnv, out)
	require.Contains(t, string(out), "--- PASS: TestNoOutputFaultInProductionBuild", "the run with %s set did not run the test:\n%s", faultEnv, out)
}
