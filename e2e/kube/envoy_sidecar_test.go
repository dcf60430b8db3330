package kube

// The Envoy suite: real Envoy 1.40 sidecars (bin/envoy, `make envoy`)
// bootstrapped by `meshd bootstrap`, real HTTP backends on 10.250.x.y, and
// requests an application would send: to a Service's ClusterIP, redirected
// into Envoy's virtualOutbound (15001) by iptables exactly as istio-init
// sets it up. Envoy runs as Istio's proxy user 1337, whose own connections
// are not redirected. Every test ends by asserting that Envoy rejected no
// xDS update.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
)

const (
	proxyUID        = 1337              // Istio's istio-proxy user
	serviceNet      = "10.96.0.0/16"    // the test API server's --service-cluster-ip-range
	serviceEntryNet = "10.97.0.0/24"    // the tests' ServiceEntry addresses
	outsideNet      = "10.250.200.0/24" // "outside the mesh": hosts no registry knows
)

// envoySidecar is a real Envoy running as the sidecar of one pod.
type envoySidecar struct {
	*harness.Envoy
	NodeID    string
	StatsPort int
	ReadyPort int
	host      string // where its admin, stats and readiness ports answer
	// expectRejects turns off the end-of-test check that Envoy rejected
	// nothing (for the test that makes it reject on purpose).
	expectRejects bool
}

// startSidecar bootstraps a real Envoy with `meshd bootstrap` as the
// sidecar of pod in ns (workload address ip, labels), connects it to m over
// ADS, and waits until Envoy is LIVE. At the end of the test it asserts
// that Envoy rejected no update.
func startSidecar(t *testing.T, m *harness.Meshd, ns, pod, ip string, labels map[string]string, extra ...string) *envoySidecar {
	t.Helper()
	return startSidecarIn(t, m, nil, ns, pod, ip, labels, extra...)
}

// startSidecarIn is startSidecar in the child network namespace n.
func startSidecarIn(t *testing.T, m *harness.Meshd, n *harness.ChildNet, ns, pod, ip string, labels map[string]string, extra ...string) *envoySidecar {
	t.Helper()
	s := launchSidecarIn(t, m, n, ns, pod, ip, labels, extra...)
	require.Eventually(t, func() bool { return s.ready() }, 30*time.Second, 50*time.Millisecond,
		"envoy %s never became ready; logs:\n%s", s.NodeID, s.Logs())
	return s
}

// launchSidecar starts the sidecar without waiting for it to be ready.
func launchSidecar(t *testing.T, m *harness.Meshd, ns, pod, ip string, labels map[string]string, extra ...string) *envoySidecar {
	return launchSidecarIn(t, m, nil, ns, pod, ip, labels, extra...)
}

// launchSidecarIn is launchSidecar in the child network namespace n (nil:
// the suite's), where Envoy reaches meshd through n's veth (meshd must
// listen on all addresses: startMeshdOnAll) and serves its admin on
// n.PeerIP.
func launchSidecarIn(t *testing.T, m *harness.Meshd, n *harness.ChildNet, ns, pod, ip string, labels map[string]string, extra ...string) *envoySidecar {
	t.Helper()
	requireRealRoot(t)
	if n == nil {
		requirePortFree(t, 15001, "another sidecar still holds the suite's 15001 (two Envoys would share it by SO_REUSEPORT)")
	}
	admin, stats, ready := harness.FreePort(t), harness.FreePort(t), harness.FreePort(t)
	xds, host := m.XDSAddr, "127.0.0.1"
	if n != nil {
		_, port, err := net.SplitHostPort(m.XDSAddr)
		require.NoError(t, err)
		xds, host = net.JoinHostPort(n.HostIP, port), n.PeerIP
	}
	args := []string{"bootstrap", "--type", "sidecar", "--xds-address", xds,
		"--namespace", ns, "--pod-name", pod, "--ip", ip, "--labels", labelString(labels),
		"--admin-address", host, "--admin-port", strconv.Itoa(admin), "--stats-port", strconv.Itoa(stats),
		"--readiness-port", strconv.Itoa(ready)}
	out, err := exec.Command(meshdBin, append(args, extra...)...).Output()
	require.NoError(t, err, "meshd bootstrap %v", args)
	e := harness.StartEnvoyWith(t, harness.EnvoyOptions{UID: proxyUID, Net: n}, envoyBin, out, admin)
	s := &envoySidecar{Envoy: e, StatsPort: stats, ReadyPort: ready, host: host,
		NodeID: fmt.Sprintf("%s~%s~%s.%s~%s.svc.cluster.local", proxyType(extra), ip, pod, ns, ns)}
	t.Cleanup(func() { s.stop(t) })
	return s
}

// proxyType is the --type among bootstrap arguments, else "sidecar".
func proxyType(args []string) string {
	for i := 0; i+1 < len(args); i++ {
		if args[i] == "--type" {
			return args[i+1]
		}
	}
	return "sidecar"
}

// requireRealRoot fails the test unless this process is real root: Envoy
// runs as uid 1337, which a user namespace mapping only the caller to root
// (hack/netns-run.sh as a normal user) does not have.
func requireRealRoot(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/uid_map")
	require.NoError(t, err)
	require.Equal(t, []string{"0", "0", "4294967295"}, strings.Fields(string(b)),
		"the Envoy suite needs root (it runs Envoy as uid %d); uid_map: %s", proxyUID, b)
}

// requirePortFree fails the test with why if something listens on port.
func requirePortFree(t *testing.T, port int, why string) {
	t.Helper()
	l, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	require.NoError(t, err, why)
	l.Close()
}

// stop checks that Envoy rejected no update (unless the test expects it
// to) and ends it. Two sidecars cannot run at once: both would bind 15001
// (as the same user, with SO_REUSEPORT, sharing its connections).
func (s *envoySidecar) stop(t *testing.T) {
	t.Helper()
	if !s.Exited() && !s.expectRejects {
		s.RequireNoRejects(t)
	}
	s.Stop()
}

// ready reports whether Envoy's readiness listener (the bootstrap's 15021
// /healthz/ready) answers 200.
func (s *envoySidecar) ready() bool {
	resp, err := http.Get(fmt.Sprintf("http://%s/healthz/ready", net.JoinHostPort(s.host, strconv.Itoa(s.ReadyPort))))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func labelString(labels map[string]string) string {
	kv := make([]string, 0, len(labels))
	for k, v := range labels {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

// intercept redirects, for the rest of the test, the application's TCP
// connections to ClusterIPs, ServiceEntry addresses and the outside range
// into Envoy's virtualOutbound (15001), as istio-init does; Envoy's own
// (uid 1337) are left alone. Everything it adds is removed at the end.
func intercept(t *testing.T) {
	t.Helper()
	run := func(args ...string) {
		out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
		require.NoError(t, err, "%v: %s", args, out)
	}
	t.Cleanup(func() {
		// Each step may find nothing to remove if set-up stopped early.
		for _, args := range [][]string{
			{"iptables", "-w", "-t", "nat", "-D", "OUTPUT", "-p", "tcp", "-j", "MESHD_OUTPUT"},
			{"iptables", "-w", "-t", "nat", "-F", "MESHD_OUTPUT"},
			{"iptables", "-w", "-t", "nat", "-X", "MESHD_OUTPUT"},
			{"ip", "route", "del", "local", serviceNet, "dev", "lo"},
			{"ip", "route", "del", "local", serviceEntryNet, "dev", "lo"},
		} {
			_ = exec.Command(args[0], args[1:]...).Run()
		}
	})
	run("ip", "route", "replace", "local", serviceNet, "dev", "lo")
	run("ip", "route", "replace", "local", serviceEntryNet, "dev", "lo")
	run("iptables", "-w", "-t", "nat", "-N", "MESHD_OUTPUT")
	run("iptables", "-w", "-t", "nat", "-A", "MESHD_OUTPUT", "-m", "owner", "--uid-owner", strconv.Itoa(proxyUID), "-j", "RETURN")
	for _, dst := range []string{serviceNet, serviceEntryNet, outsideNet} {
		run("iptables", "-w", "-t", "nat", "-A", "MESHD_OUTPUT", "-p", "tcp", "-d", dst, "-j", "REDIRECT", "--to-ports", "15001")
	}
	run("iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-j", "MESHD_OUTPUT")
}

// interceptIn sets up the same interception inside the child namespace n
// (removed with it).
func interceptIn(t *testing.T, n *harness.ChildNet) {
	t.Helper()
	n.Run(t, "iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-m", "owner", "--uid-owner", strconv.Itoa(proxyUID), "-j", "RETURN")
	for _, dst := range []string{serviceNet, serviceEntryNet} {
		n.Run(t, "ip", "route", "add", "local", dst, "dev", "lo")
		n.Run(t, "iptables", "-w", "-t", "nat", "-A", "OUTPUT", "-p", "tcp", "-d", dst, "-j", "REDIRECT", "--to-ports", "15001")
	}
}

// httpService creates a ClusterIP Service with one HTTP port (name "http",
// target port port) and returns its ClusterIP.
func (c *cluster) httpService(ns, name string, port int32) string {
	return c.httpServiceNamed(ns, name, "http", port)
}

// httpServiceNamed is httpService with the port named portName (its
// protocol prefix, e.g. "grpc").
func (c *cluster) httpServiceNamed(ns, name, portName string, port int32) string {
	svc, err := c.kube.CoreV1().Services(ns).Create(c.ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: portName, Port: port}},
		},
	}, metav1.CreateOptions{})
	require.NoError(c.t, err)
	return svc.Spec.ClusterIP
}

// echoService creates Service echo (HTTP port 8080) in ns with one ready
// backend, echo-0 on 10.250.<net>.1, and returns its ClusterIP and the
// backend.
func (c *cluster) echoService(ns string, net int) (string, *harness.HTTPBackend) {
	vip := c.httpService(ns, "echo", 8080)
	b := harness.StartHTTPBackend(c.t, "echo-0", backendIP(net, 1), 8080)
	c.createSlice(httpSlice(ns, "echo-1", "echo", 8080, hep{b: b, ready: true}))
	return vip, b
}

// echoMesh is the Envoy suite's usual start: interception on, meshd
// watching the cluster (its own istio namespace, ns-system), and namespace
// ns with Service echo and one backend on 10.250.<net>.1. It returns the
// cluster, meshd and echo's ClusterIP.
func echoMesh(t *testing.T, ns string, net int) (*cluster, *harness.Meshd, string) {
	c := newCluster(t)
	intercept(t)
	m := startMeshd(t, ns+"-system")
	c.namespace(ns, nil)
	vip, _ := c.echoService(ns, net)
	return c, m, vip
}

// hep is one HTTP endpoint of a slice.
type hep struct {
	b           *harness.HTTPBackend
	pod         string
	ready       bool
	terminating bool
}

// httpSlice builds an EndpointSlice of svc with HTTP endpoints on port.
func httpSlice(ns, name, svc string, port int32, eps ...hep) *discoveryv1.EndpointSlice {
	specs := make([]epSpec, len(eps))
	for i, e := range eps {
		specs[i] = epSpec{ip: e.b.IP, pod: e.pod, ready: e.ready, terminating: e.terminating}
	}
	return endpointSlice(ns, name, svc, "http", port, specs)
}

// reply is what one request through Envoy returned.
type reply struct {
	Status  int
	Backend string // x-backend
	Header  http.Header
	Echo    harness.Echo
	Took    time.Duration
	Err     error
}

// client sends the application's requests; they go through Envoy by
// interception. No keep-alive: each request is a new connection, as the
// per-request checks want.
var client = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{DisableKeepAlives: true},
}

// get sends GET url with the Host header host ("" keeps the URL's) and
// optional header pairs.
func get(url, host string, headers ...string) reply {
	return getVia(client, url, host, headers...)
}

// getVia is get with another client (e.g. one of a child namespace).
func getVia(client *http.Client, url, host string, headers ...string) reply {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return reply{Err: err}
	}
	if host != "" {
		req.Host = host
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return reply{Err: err, Took: time.Since(start)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Backend: resp.Header.Get("x-backend"), Header: resp.Header, Took: time.Since(start)}
	_ = json.Unmarshal(body, &r.Echo)
	return r
}

// spread sends n requests and counts them by backend ("" for failures).
func spread(t *testing.T, n int, url, host string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for i := 0; i < n; i++ {
		r := get(url, host)
		if r.Err != nil || r.Status != http.StatusOK {
			got[""]++
			continue
		}
		got[r.Backend]++
	}
	return got
}

// share is counts[name] / the total.
func share(counts map[string]int, name string) float64 {
	total := 0
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return 0
	}
	return float64(counts[name]) / float64(total)
}

// httpLoad sends requests at a fixed rate until stopped, counting
// successes and failures.
type httpLoad struct {
	ok, failed atomic.Int64
	mu         sync.Mutex
	firstErr   string
	cancel     context.CancelFunc
	done       chan struct{}
}

// startHTTPLoad sends GET url (Host host) every interval until stopped or
// the test ends.
func startHTTPLoad(t *testing.T, url, host string, every time.Duration) *httpLoad {
	ctx, cancel := context.WithCancel(context.Background())
	l := &httpLoad{cancel: cancel, done: make(chan struct{})}
	t.Cleanup(l.stop)
	go func() {
		defer close(l.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		var wg sync.WaitGroup
		for {
			select {
			case <-ctx.Done():
				wg.Wait()
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := get(url, host)
				if r.Err == nil && r.Status == http.StatusOK {
					l.ok.Add(1)
					return
				}
				l.failed.Add(1)
				l.mu.Lock()
				if l.firstErr == "" {
					l.firstErr = fmt.Sprintf("status %d err %v flags %q", r.Status, r.Err, r.Header.Get("x-envoy-response-flags"))
				}
				l.mu.Unlock()
			}()
		}
	}()
	return l
}

// stop ends the load and waits for requests in flight.
func (l *httpLoad) stop() {
	l.cancel()
	<-l.done
}

// interceptInbound redirects connections to the workload address ip:port
// into Envoy's virtualInbound (15006), as istio-init does for a pod's
// inbound ports (the test sends them from the same namespace, so the rule
// is on OUTPUT). Call after intercept; its cleanup removes the rule.
func interceptInbound(t *testing.T, ip string, port int) {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-I", "MESHD_OUTPUT", "2", "-p", "tcp", "-d", ip,
		"--dport", strconv.Itoa(port), "-j", "REDIRECT", "--to-ports", "15006").CombinedOutput()
	require.NoError(t, err, "%s", out)
}
