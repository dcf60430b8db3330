package harness

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// ChildNet is a second network namespace made by a test inside the suite's
// (hack/netns-run.sh): a pod of its own, e.g. for a second Envoy sidecar
// that needs its own ports 15001/15006. A veth pair joins it to the suite's
// namespace: HostIP is the suite's end, PeerIP the child's; the child's
// default route goes through HostIP, so it reaches every 10.250.x.y address
// of the suite and nothing else. It is removed when the test ends.
type ChildNet struct {
	// Path is the namespace's file, for nsenter --net and setns.
	Path           string
	HostIP, PeerIP string
}

// NewChildNet makes the namespace number idx (1..250; 10.251.<idx>.0/30,
// interfaces mh<idx> and mp<idx>). It needs root, unshare, nsenter and ip.
func NewChildNet(t testing.TB, idx int) *ChildNet {
	t.Helper()
	require.True(t, idx >= 1 && idx <= 250, "child net index %d", idx)
	holder := exec.Command("unshare", "--net", "--", "sleep", "3600")
	holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // gone with the test binary
	require.NoError(t, holder.Start())
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	pid := strconv.Itoa(holder.Process.Pid)
	n := &ChildNet{Path: "/proc/" + pid + "/ns/net",
		HostIP: fmt.Sprintf("10.251.%d.1", idx), PeerIP: fmt.Sprintf("10.251.%d.2", idx)}
	self, err := os.Readlink("/proc/self/ns/net")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ns, err := os.Readlink(n.Path)
		return err == nil && ns != self
	}, 5*time.Second, 10*time.Millisecond, "unshare never made its namespace")
	host, peer := fmt.Sprintf("mh%d", idx), fmt.Sprintf("mp%d", idx)
	run(t, "ip", "link", "add", host, "type", "veth", "peer", "name", peer, "netns", pid)
	run(t, "ip", "addr", "add", n.HostIP+"/30", "dev", host)
	run(t, "ip", "link", "set", host, "up")
	n.Run(t, "ip", "link", "set", "lo", "up")
	n.Run(t, "ip", "addr", "add", n.PeerIP+"/30", "dev", peer)
	n.Run(t, "ip", "link", "set", peer, "up")
	n.Run(t, "ip", "route", "add", "default", "via", n.HostIP)
	return n
}

// Run runs a command inside the namespace and fails the test if it fails.
func (n *ChildNet) Run(t testing.TB, args ...string) {
	t.Helper()
	run(t, append([]string{"nsenter", "--net=" + n.Path, "--"}, args...)...)
}

func run(t testing.TB, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	require.NoError(t, err, "%v: %s", args, out)
}

// DialContext opens a connection from inside the namespace, as a process
// of that pod would: the socket is made on an OS thread that has joined the
// namespace, and keeps it after the thread leaves.
func (n *ChildNet) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		// A thread that cannot return to the suite's namespace is never
		// unlocked: it ends with this goroutine.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			done <- result{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open(n.Path)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- result{err: fmt.Errorf("setns %s: %w", n.Path, err)}
			return
		}
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{c, err}
	}()
	r := <-done
	return r.c, r.err
}

// HTTPClient is an HTTP client whose connections start inside the
// namespace (one connection per request).
func (n *ChildNet) HTTPClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: n.DialContext, DisableKeepAlives: true}}
}
