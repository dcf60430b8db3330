package testenv

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"time"
)

// startEtcd runs a single-member etcd on free loopback ports with its data
// under Dir and waits for its /health.
func (e *Env) startEtcd(ctx context.Context, bin string) error {
	clientPort, err := freePort()
	if err != nil {
		return err
	}
	peerPort, err := freePort()
	if err != nil {
		return err
	}
	e.EtcdURL = "http://127.0.0.1:" + strconv.Itoa(clientPort)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peerPort)
	args := []string{
		"--name=testenv",
		"--data-dir=" + filepath.Join(e.Dir, "etcd"),
		"--listen-client-urls=" + e.EtcdURL,
		"--advertise-client-urls=" + e.EtcdURL,
		"--listen-peer-urls=" + peerURL,
		"--initial-advertise-peer-urls=" + peerURL,
		"--initial-cluster=testenv=" + peerURL,
		"--unsafe-no-fsync",                // throw-away data: skip fsync for speed
		"--quota-backend-bytes=4294967296", // 4 GiB, ample for benchmarks
		"--log-level=warn",
	}
	e.etcd, err = startProcess("etcd", bin, filepath.Join(e.Dir, "etcd.log"), args)
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 2 * time.Second}
	return waitFor(ctx, e.etcd, "etcd /health", func() error {
		return getOK(ctx, client, e.EtcdURL+"/health")
	})
}

// startAPIServer prepares certificates and a free loopback port, then runs
// kube-apiserver against etcd and waits for /readyz.
func (e *Env) startAPIServer(ctx context.Context, bin string) error {
	keys, err := newPKI(filepath.Join(e.Dir, "pki"))
	if err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	e.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	e.Token, e.CAFile, e.CAPEM = keys.token, keys.caFile, keys.caPEM
	e.transport = newTransport(keys.caPEM)
	e.apiBin = bin
	e.apiArgs = []string{
		"--etcd-servers=" + e.EtcdURL,
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		// An explicit address: the default is looked up from the default
		// route, which a bare network namespace does not have.
		"--advertise-address=127.0.0.1",
		// No endpoints for the kubernetes Service: they would be loopback.
		"--endpoint-reconciler-type=none",
		"--cert-dir=" + filepath.Join(e.Dir, "pki"),
		"--tls-cert-file=" + keys.certFile,
		"--tls-private-key-file=" + keys.keyFile,
		"--token-auth-file=" + keys.tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + keys.saKeyFile,
		"--service-account-signing-key-file=" + keys.saKeyFile,
		"--service-cluster-ip-range=10.96.0.0/16",
		// No controller-manager creates "default" ServiceAccounts, so the
		// ServiceAccount plugin would reject every Pod.
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false",
		// Webhooks to a Service go to its endpoints, not its ClusterIP
		// (nothing implements ClusterIPs here): the injection e2e test.
		"--enable-aggregator-routing=true",
		"--profiling=false",
		"--v=1",
	}
	if err := e.writeKubeconfig(); err != nil {
		return err
	}
	return e.runAPIServer(ctx)
}

// runAPIServer starts the kube-apiserver process and waits for /readyz.
func (e *Env) runAPIServer(ctx context.Context) error {
	p, err := startProcess("kube-apiserver", e.apiBin, filepath.Join(e.Dir, "kube-apiserver.log"), e.apiArgs)
	if err != nil {
		return err
	}
	e.apiserver = p
	client := e.HTTPClient()
	client.Timeout = 5 * time.Second
	return waitFor(ctx, p, "kube-apiserver /readyz", func() error {
		return getOK(ctx, client, e.URL+"/readyz")
	})
}

// StopAPIServer stops kube-apiserver (etcd keeps running), to test how
// clients ride out an outage. StartAPIServer brings it back.
func (e *Env) StopAPIServer() error {
	if e.apiserver == nil {
		return fmt.Errorf("kube-apiserver is not running")
	}
	err := e.apiserver.stop(10 * time.Second)
	e.apiserver = nil
	e.transport.CloseIdleConnections()
	return err
}

// StartAPIServer restarts kube-apiserver after StopAPIServer, on the same
// address with the same certificates and token, and waits for /readyz.
func (e *Env) StartAPIServer(ctx context.Context) error {
	if e.apiserver != nil {
		return fmt.Errorf("kube-apiserver is already running")
	}
	return e.runAPIServer(ctx)
}

// waitFor polls check every 100ms until it succeeds, p exits or ctx ends.
func waitFor(ctx context.Context, p *process, what string, check func() error) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		last := check()
		if last == nil {
			return nil
		}
		if gone, err := p.exited(); gone {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last error: %v)", what, ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// getOK issues a GET and fails unless the status is 200.
func getOK(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
