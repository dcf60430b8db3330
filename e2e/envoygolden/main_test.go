package envoygolden

import (
	"fmt"
	"os"
	"testing"

	"github.com/meshd/meshd/e2e/harness"
)

// envoyBin is the real Envoy the suite runs (harness.EnvoyBinary).
var envoyBin string

// TestMain runs the suite inside hack/netns-run.sh's network namespace: the
// goldens hold DNS clusters Envoy resolves and listeners that bind, and no
// packet may leave the machine. Envoy is found before entering it.
func TestMain(m *testing.M) {
	bin, err := harness.EnvoyBinary()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if !harness.InNetns() {
		os.Exit(harness.RerunInNetns("MESHD_ENVOY_BIN=" + bin))
	}
	envoyBin = bin
	os.Exit(m.Run())
}
