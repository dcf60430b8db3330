package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ErrNotBuilt is wrapped by Start's error when kube-apiserver or etcd is
// missing: run `make testenv` first.
var ErrNotBuilt = errors.New("test environment binaries not built (run `make testenv`)")

// Options configure Start. The zero value is ready to use.
type Options struct {
	// BinDir holds the kube-apiserver and etcd binaries. Default:
	// $MESHD_TESTENV_BIN, else <repo>/bin.
	BinDir string
	// CRDFile is a multi-document YAML file of CustomResourceDefinitions to
	// install. Default: $MESHD_TESTENV_CRDS, else istio.io/api's
	// kubernetes/customresourcedefinitions.gen.yaml.
	CRDFile string
	// SkipCRDs starts the API server without installing any CRDs.
	SkipCRDs bool
	// Timeout bounds the whole start-up. Default 90s.
	Timeout time.Duration
	// Logf, if set, receives progress messages (e.g. t.Logf).
	Logf func(format string, args ...any)
}

// Env is a running etcd + kube-apiserver. Its fields are read-only.
type Env struct {
	// URL is the API server's base URL, https://127.0.0.1:<port>.
	URL string
	// Token is a bearer token for an admin user in group system:masters.
	Token string
	// CAFile is the PEM file of the CA that signed the serving certificate;
	// CAPEM is its content.
	CAFile string
	CAPEM  []byte
	// Kubeconfig is the path of a kubeconfig file for URL, the CA and Token.
	Kubeconfig string
	// EtcdURL is etcd's client URL, http://127.0.0.1:<port>.
	EtcdURL string
	// Dir is the temporary directory holding data, certificates and logs.
	Dir string

	etcd, apiserver *process
	apiBin          string          // kube-apiserver binary, for StartAPIServer
	apiArgs         []string        // its arguments
	transport       *http.Transport // shared by HTTPClient's clients
	stopOnce        sync.Once
	stopErr         error
}

// Start runs etcd and kube-apiserver on free loopback ports and waits until
// the API server is ready and the CRDs are established. ctx and
// opts.Timeout bound the start-up only; the processes run until Stop. On
// error nothing is left running and the error carries the logs' tails.
func Start(ctx context.Context, opts Options) (env *Env, err error) {
	opts = opts.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	bins, err := findBinaries(opts.BinDir)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "meshd-testenv-")
	if err != nil {
		return nil, err
	}
	e := &Env{Dir: dir}
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w\n%s", err, e.logTails(4096))
			_ = e.Stop()
		}
	}()
	began := time.Now()
	if err := e.startEtcd(ctx, bins["etcd"]); err != nil {
		return nil, err
	}
	opts.Logf("testenv: etcd ready at %s after %v", e.EtcdURL, time.Since(began).Round(time.Millisecond))
	if err := e.startAPIServer(ctx, bins["kube-apiserver"]); err != nil {
		return nil, err
	}
	opts.Logf("testenv: kube-apiserver ready at %s after %v", e.URL, time.Since(began).Round(time.Millisecond))
	if opts.SkipCRDs {
		return e, nil
	}
	n, err := e.InstallCRDs(ctx, opts.CRDFile)
	if err != nil {
		return nil, err
	}
	opts.Logf("testenv: %d CRDs established after %v", n, time.Since(began).Round(time.Millisecond))
	return e, nil
}

// withDefaults fills in unset options.
func (o Options) withDefaults() Options {
	if o.BinDir == "" {
		o.BinDir = os.Getenv("MESHD_TESTENV_BIN")
	}
	if o.CRDFile == "" {
		o.CRDFile = os.Getenv("MESHD_TESTENV_CRDS")
	}
	if o.Timeout <= 0 {
		o.Timeout = 90 * time.Second
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	return o
}

// findBinaries returns the paths of kube-apiserver and etcd in dir (default
// <repo>/bin), wrapping ErrNotBuilt if one is missing.
func findBinaries(dir string) (map[string]string, error) {
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(root, "bin")
	}
	bins := map[string]string{}
	for _, name := range []string{"kube-apiserver", "etcd"} {
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return nil, fmt.Errorf("%w: no executable %s", ErrNotBuilt, path)
		}
		bins[name] = path
	}
	return bins, nil
}

// Stop kills both processes (API server first) and removes Dir unless
// MESHD_TESTENV_KEEP is set. It is safe to call more than once and on a nil
// Env; it reports a process that had died on its own.
func (e *Env) Stop() error {
	if e == nil {
		return nil
	}
	e.stopOnce.Do(func() {
		var errs []error
		for _, p := range []*process{e.apiserver, e.etcd} {
			if p != nil {
				errs = append(errs, p.stop(10*time.Second))
			}
		}
		if e.transport != nil {
			e.transport.CloseIdleConnections()
		}
		if os.Getenv("MESHD_TESTENV_KEEP") == "" {
			errs = append(errs, os.RemoveAll(e.Dir))
		}
		e.stopErr = errors.Join(errs...)
	})
	return e.stopErr
}

// Err reports whether etcd or the API server has exited since Start.
func (e *Env) Err() error {
	var errs []error
	for _, p := range []*process{e.etcd, e.apiserver} {
		if p == nil {
			continue
		}
		if gone, err := p.exited(); gone {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DumpLogs logs the tail of both processes' logs to t if t has failed, or
// always when MESHD_TESTENV_LOGS is set.
func (e *Env) DumpLogs(t testing.TB) {
	t.Helper()
	if e == nil || (!t.Failed() && os.Getenv("MESHD_TESTENV_LOGS") == "") {
		return
	}
	t.Logf("testenv logs (dir %s):\n%s", e.Dir, e.logTails(16<<10))
}

// logTails returns the last n bytes of each process's log.
func (e *Env) logTails(n int64) string {
	var b strings.Builder
	for _, p := range []*process{e.etcd, e.apiserver} {
		if p != nil {
			fmt.Fprintf(&b, "----- %s (%s) -----\n%s\n", p.name, p.logPath, p.logTail(n))
		}
	}
	return b.String()
}
