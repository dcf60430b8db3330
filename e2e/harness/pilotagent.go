package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/testenv"
)

// Istio's real node agent (pilot-agent, built by `make pilot-agent`) run as
// a VM-style sidecar: no pod, no Kubernetes, every file it needs in a
// working directory of its own (hack/pilot-agent.md has what it reads and
// why).

// PilotAgentBinary returns the pilot-agent the suites run:
// $MESHD_PILOT_AGENT_BIN, or bin/pilot-agent of the repository. A missing
// binary is an error, never a reason to skip.
func PilotAgentBinary() (string, error) {
	if b := os.Getenv("MESHD_PILOT_AGENT_BIN"); b != "" {
		return b, nil
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		return "", err
	}
	b := filepath.Join(root, "bin", "pilot-agent")
	if _, err := os.Stat(b); err != nil {
		return "", fmt.Errorf("pilot-agent not found at %s (run `make pilot-agent`): %w", b, err)
	}
	return b, nil
}

// pilotAgentTemplate returns the Envoy bootstrap template the agent renders
// (Istio's tools/packaging/common/envoy_bootstrap.json, which its proxy
// image ships and the binary does not embed): $MESHD_PILOT_AGENT_TEMPLATE,
// or pilot-agent.bootstrap.json next to bin, where `make pilot-agent` puts
// it.
func pilotAgentTemplate(bin string) (string, error) {
	p := os.Getenv("MESHD_PILOT_AGENT_TEMPLATE")
	if p == "" {
		p = filepath.Join(filepath.Dir(bin), "pilot-agent.bootstrap.json")
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("pilot-agent's bootstrap template not found (run `make pilot-agent`): %w", err)
	}
	return filepath.Abs(p)
}

// PilotAgentOptions say how a pilot-agent sidecar runs. DiscoveryAddress
// and RootCert are required; every other field has a default.
type PilotAgentOptions struct {
	// DiscoveryAddress is host:port of the control plane's secure port
	// (istiod's 15012): ADS and Istio's CA service over TLS.
	DiscoveryAddress string
	// RootCert is the PEM root the secure port's serving certificate
	// chains to (./var/run/secrets/istio/root-cert.pem, Kubernetes'
	// istio-ca-root-cert ConfigMap in a pod).
	RootCert []byte
	// ServerName is what the agent verifies that certificate for and sends
	// as SNI (ISTIOD_SAN); "" is IstiodName. Without it the agent would
	// verify DiscoveryAddress's host, e.g. an IP SAN 127.0.0.1.
	ServerName string
	// Token is sent as "authorization: Bearer <Token>" on every xDS and CA
	// call (./var/run/secrets/tokens/istio-token); "" sends none.
	Token string
	// Namespace, ServiceAccount and PodName are the workload's (defaults
	// "default", "default", "pilot-agent-<admin port>"): the node ID is
	// <Type>~<IP>~<PodName>.<Namespace>~<Namespace>.svc.cluster.local
	// and the certificate asked for spiffe://cluster.local/ns/<Namespace>/sa/<ServiceAccount>.
	Namespace, ServiceAccount, PodName string
	// IP is the workload's address (INSTANCE_IP), first in the node ID and
	// in INSTANCE_IPS (the agent adds the host's other addresses); default
	// 127.0.0.1, or Net.PeerIP.
	IP string
	// ClusterID is sent as node metadata CLUSTER_ID and as the "ClusterID"
	// header of every call (ISTIO_META_CLUSTER_ID); default "Kubernetes",
	// istiod's default cluster.
	ClusterID string
	// Labels are the workload's labels (node metadata LABELS).
	Labels map[string]string
	// Type is "sidecar" (default) or "router" (a gateway).
	Type string
	// StateOfTheWorld makes Envoy use state-of-the-world ADS; by default
	// it uses delta ADS, this Istio's default (ISTIO_DELTA_XDS).
	StateOfTheWorld bool
	// Bin and EnvoyBin are the binaries (defaults PilotAgentBinary and
	// EnvoyBinary).
	Bin, EnvoyBin string
	// AdminPort (Envoy's admin, on loopback), StatusPort (the agent's
	// status server, all addresses), EnvoyStatusPort (Envoy's health
	// listener, istio's 15021) and PrometheusPort (Envoy's 15090): 0 takes
	// a FreePort, so several agents can share a network namespace.
	AdminPort, StatusPort, EnvoyStatusPort, PrometheusPort int
	// UID is the user and group the agent and its Envoy run as (0: this
	// process's), e.g. 1337 as the istio-proxy container.
	UID uint32
	// Net, if set, is the network namespace the agent runs in.
	Net *ChildNet
	// ProxyLogLevel is Envoy's log level (default "warning").
	ProxyLogLevel string
	// Env is added to the agent's environment last (it wins), e.g.
	// "ISTIO_META_DNS_CAPTURE=true".
	Env []string
}

// PilotAgent is a running pilot-agent and the Envoy it started.
type PilotAgent struct {
	// Envoy is the sidecar's Envoy: AdminURL, Stats, RequireNoRejects ...
	// work as for StartEnvoy's. Logs holds the agent's output and Envoy's
	// (which writes to the agent's stdout), Exited and Stop are the
	// agent's: on SIGTERM it drains and stops Envoy.
	*Envoy
	// NodeID is the node ID Envoy sends.
	NodeID string
	// Dir is the agent's working directory, the root of every relative
	// path it uses (./etc/istio/proxy, ./var/run/secrets/...).
	Dir string
	// StatusURL is the agent's status server: /healthz/ready, and
	// /stats/prometheus (Envoy's, the agent's and the app's merged).
	StatusURL string
	// The ports it was given (see PilotAgentOptions).
	AdminPort, StatusPort, EnvoyStatusPort, PrometheusPort int
}

// StartPilotAgent runs `pilot-agent proxy <Type>` as a VM-style sidecar
// of the control plane at o.DiscoveryAddress, waits until its Envoy's admin
// interface answers (not for config: see WaitReady) and stops it at the
// end of the test. On failure the test log gets its logs.
func StartPilotAgent(t testing.TB, o PilotAgentOptions) *PilotAgent {
	t.Helper()
	require.NotEmpty(t, o.DiscoveryAddress, "PilotAgentOptions.DiscoveryAddress")
	require.NotEmpty(t, o.RootCert, "PilotAgentOptions.RootCert")
	o = pilotAgentDefaults(t, o)
	tmpl, err := pilotAgentTemplate(o.Bin)
	require.NoError(t, err)
	a := &PilotAgent{Dir: pilotAgentDir(t, o), AdminPort: o.AdminPort, StatusPort: o.StatusPort,
		EnvoyStatusPort: o.EnvoyStatusPort, PrometheusPort: o.PrometheusPort,
		NodeID: fmt.Sprintf("%s~%s~%s.%s~%s.svc.cluster.local", o.Type, o.IP, o.PodName, o.Namespace, o.Namespace),
		Envoy:  &Envoy{done: make(chan struct{})}}
	statusHost := "127.0.0.1" // the status server listens on every address
	if o.Net != nil {
		statusHost = o.Net.PeerIP
	}
	a.StatusURL = "http://" + net.JoinHostPort(statusHost, strconv.Itoa(o.StatusPort))
	adminAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.AdminPort))
	if o.Net != nil {
		adminAddr = forwardIntoNet(t, o.Net, adminAddr)
	}
	a.AdminURL = "http://" + adminAddr
	a.start(t, o, tmpl)
	deadline := time.Now().Add(30 * time.Second)
	for adminStatus(a.AdminURL+"/server_info") != http.StatusOK {
		if a.Exited() || time.Now().After(deadline) {
			require.Failf(t, "pilot-agent's Envoy admin never answered",
				"%s (agent exited: %v); logs:\n%s", a.AdminURL, a.Exited(), a.Logs())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return a
}

// pilotAgentDefaults fills the options left empty.
func pilotAgentDefaults(t testing.TB, o PilotAgentOptions) PilotAgentOptions {
	t.Helper()
	var err error
	if o.Bin == "" {
		o.Bin, err = PilotAgentBinary()
		require.NoError(t, err)
	}
	if o.EnvoyBin == "" {
		o.EnvoyBin, err = EnvoyBinary()
		require.NoError(t, err)
	}
	for _, p := range []*int{&o.AdminPort, &o.StatusPort, &o.EnvoyStatusPort, &o.PrometheusPort} {
		if *p == 0 {
			*p = FreePort(t)
		}
	}
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.ServerName, IstiodName)
	def(&o.Namespace, "default")
	def(&o.ServiceAccount, "default")
	def(&o.PodName, "pilot-agent-"+strconv.Itoa(o.AdminPort))
	if o.IP == "" {
		o.IP = "127.0.0.1"
		if o.Net != nil {
			o.IP = o.Net.PeerIP
		}
	}
	def(&o.ClusterID, "Kubernetes")
	def(&o.Type, "sidecar")
	def(&o.ProxyLogLevel, "warning")
	return o
}

// pilotAgentDir makes the agent's working directory with what a pod's
// volumes would hold: the root certificate, the token, and an Envoy
// wrapper (the agent's PROXY_CONFIG binaryPath) that has Envoy killed when
// the agent dies, as the agent does not.
func pilotAgentDir(t testing.TB, o PilotAgentOptions) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pilot-agent")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	type file struct {
		b    []byte
		mode os.FileMode
	}
	files := map[string]file{
		"var/run/secrets/istio/root-cert.pem": {o.RootCert, 0o644},
		"envoy":                               {envoyWrapper(o.EnvoyBin), 0o755},
	}
	if o.Token != "" {
		files["var/run/secrets/tokens/istio-token"] = file{[]byte(o.Token), 0o600}
	}
	for name, f := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, f.b, f.mode))
	}
	require.NoError(t, os.Chmod(dir, 0o755))
	if o.UID != 0 {
		require.NoError(t, filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(o.UID), int(o.UID))
		}))
	}
	return dir
}

// envoyWrapper is a script that execs envoy with the parent-death signal
// SIGKILL (setpriv, util-linux), or plainly when there is no setpriv.
func envoyWrapper(envoy string) []byte {
	if sp, err := exec.LookPath("setpriv"); err == nil {
		return fmt.Appendf(nil, "#!/bin/sh\nexec %s --pdeathsig KILL -- %s \"$@\"\n", sp, envoy)
	}
	return fmt.Appendf(nil, "#!/bin/sh\nexec %s \"$@\"\n", envoy)
}

// start runs the agent in a.Dir and arranges its stop.
func (a *PilotAgent) start(t testing.TB, o PilotAgentOptions, tmpl string) {
	t.Helper()
	args := []string{o.Bin, "proxy", o.Type, "--templateFile", tmpl, "--proxyLogLevel", o.ProxyLogLevel}
	if o.Net != nil {
		id := strconv.Itoa(int(o.UID))
		args = append([]string{"nsenter", "--net=" + o.Net.Path, "--setuid", id, "--setgid", id, "--"}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = a.Dir
	cmd.Env = pilotAgentEnv(t, o, a.Dir)
	cmd.Stdout, cmd.Stderr = a.Envoy, a.Envoy
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if o.UID != 0 && o.Net == nil {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: o.UID, Gid: o.UID}
	}
	require.NoError(t, cmd.Start())
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(a.done) }()
	a.stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-a.done
		}
	}
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() || os.Getenv("MESHD_E2E_LOGS") != "" {
			t.Logf("pilot-agent %s logs (exit: %v):\n%s", a.NodeID, waitErr, a.Logs())
		}
	})
}

// pilotAgentEnv is the agent's whole environment: nothing of this
// process's but PATH, HOME and TMPDIR, so a POD_NAMESPACE or ISTIO_META_*
// of the test's environment cannot leak in.
func pilotAgentEnv(t testing.TB, o PilotAgentOptions, dir string) []string {
	t.Helper()
	pc, err := json.Marshal(map[string]any{
		"discoveryAddress": o.DiscoveryAddress,
		"binaryPath":       filepath.Join(dir, "envoy"),
		"proxyAdminPort":   o.AdminPort,
		"statusPort":       o.StatusPort,
		"concurrency":      1,
		// Envoy's --drain-time-s, and how long the agent drains on SIGTERM.
		"drainDuration":            "1s",
		"terminationDrainDuration": "1s",
	})
	require.NoError(t, err)
	env := []string{
		"POD_NAME=" + o.PodName, "POD_NAMESPACE=" + o.Namespace, "SERVICE_ACCOUNT=" + o.ServiceAccount,
		"INSTANCE_IP=" + o.IP, "ISTIO_META_CLUSTER_ID=" + o.ClusterID, "ISTIOD_SAN=" + o.ServerName,
		"PROXY_CONFIG=" + string(pc), "JWT_POLICY=third-party-jwt",
		"ENVOY_STATUS_PORT=" + strconv.Itoa(o.EnvoyStatusPort),
		"ENVOY_PROMETHEUS_PORT=" + strconv.Itoa(o.PrometheusPort),
		"ISTIO_DELTA_XDS=" + strconv.FormatBool(!o.StateOfTheWorld),
		// Not on GCP, AWS or Azure: skips 5 s of metadata-server probes.
		"CLOUD_PLATFORM=none",
	}
	if len(o.Labels) > 0 {
		l, err := json.Marshal(o.Labels)
		require.NoError(t, err)
		env = append(env, "ISTIO_METAJSON_LABELS="+string(l))
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return append(env, o.Env...)
}

// ReadyErr is nil when the agent's readiness probe (its status server's
// /healthz/ready, the pod's readiness in Kubernetes) passes: Envoy has
// accepted CDS and LDS and is LIVE. Otherwise it says why.
func (a *PilotAgent) ReadyErr() error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(a.StatusURL + "/healthz/ready")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	b, _ := io.ReadAll(resp.Body)
	return fmt.Errorf("/healthz/ready: %s: %s", resp.Status, strings.TrimSpace(string(b)))
}

// WaitReady waits up to within for ReadyErr to be nil, and fails the test
// with the last reason and the logs if it is not.
func (a *PilotAgent) WaitReady(t testing.TB, within time.Duration) {
	t.Helper()
	var last error
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) && !a.Exited() {
		if last = a.ReadyErr(); last == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	require.Failf(t, "pilot-agent not ready", "%s (exited: %v) after %v: %v\nlogs:\n%s",
		a.NodeID, a.Exited(), within, last, a.Logs())
}

// adminStatus returns the HTTP status of a GET, 0 if it failed.
func adminStatus(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// forwardIntoNet relays connections to a free loopback port of this
// network namespace to addr inside n (Envoy's admin listens on the pod's
// own 127.0.0.1), until the test ends, and returns that port's address.
func forwardIntoNet(t testing.TB, n *ChildNet, addr string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go relay(c, n, addr)
		}
	}()
	return l.Addr().String()
}

// relay copies between c and a new connection to addr inside n.
func relay(c net.Conn, n *ChildNet, addr string) {
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	up, err := n.DialContext(ctx, "tcp", addr)
	cancel()
	if err != nil {
		return
	}
	defer up.Close()
	go func() {
		_, _ = io.Copy(up, c)
		if tc, ok := up.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, _ = io.Copy(c, up)
}
