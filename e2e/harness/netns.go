package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/meshd/meshd/e2e/testenv"
)

// InNetns reports whether this process runs inside the test network
// namespace made by hack/netns-run.sh.
func InNetns() bool { return os.Getenv("MESHD_NETNS_CIDR") != "" }

// RerunInNetns runs this test binary again, with the same flags, inside
// hack/netns-run.sh (which has no network: build everything before) with
// env added, and returns its exit code.
func RerunInNetns(env ...string) int {
	root, err := testenv.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	cmd := exec.Command(filepath.Join(root, "hack", "netns-run.sh"), os.Args...)
	cmd.Env = append(os.Environ(), env...)
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
