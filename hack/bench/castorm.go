package main

// The CA storm (--ca-storm N): N sidecars starting together each ask
// meshd's secure port (istiod's 15012) for their workload certificate with
// Istio's CreateCertificate, authenticated by their own service-account
// token. Everything the sidecars would compute themselves (keys, CSRs,
// tokens, TLS connections) is prepared before the storm and not counted.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"net/url"
	"runtime"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshd/meshd/e2e/testenv"
)

// caStormOpts are the CA storm's flags.
type caStormOpts struct {
	n, namespaces, conns int
	key                  string
	timeout              time.Duration
	again                bool
}

var caOpts caStormOpts

func init() {
	flag.IntVar(&caOpts.n, "ca-storm", 0, "instead of the xDS benchmark, fire N CreateCertificate calls at once at meshd's secure port (0: off)")
	flag.IntVar(&caOpts.namespaces, "ca-storm-namespaces", 20, "namespaces the CA storm's service accounts are spread over")
	flag.IntVar(&caOpts.conns, "ca-storm-conns", 4, "TLS connections the CA storm's calls share")
	flag.StringVar(&caOpts.key, "ca-storm-key", "rsa", "CSR keys: rsa (RSA 2048, pilot-agent's default) or ec (P-256, ECC_SIGNATURE_ALGORITHM=ECDSA)")
	flag.DurationVar(&caOpts.timeout, "ca-storm-timeout", 2*time.Minute, "deadline of each CreateCertificate call")
	flag.BoolVar(&caOpts.again, "ca-storm-again", true, "then fire the same N calls again while meshd's TokenReview cache still holds every token (signing only)")
}

// caIdentity is one simulated sidecar: its service account, token, CSR.
type caIdentity struct {
	ns, sa, spiffe, token string
	csr                   []byte
	pub                   crypto.PublicKey
}

// istioNS is meshd's --istio-namespace in the CA storm (the CA secret's).
const istioNS = "istio-system"

// runCAStorm is the whole --ca-storm run.
func runCAStorm(ctx context.Context, c config, logf func(string, ...any)) error {
	o := caOpts
	if o.n < 1 || o.namespaces < 1 || o.conns < 1 || (o.key != "rsa" && o.key != "ec") {
		return fmt.Errorf("--ca-storm needs N ≥ 1, namespaces ≥ 1, conns ≥ 1 and --ca-storm-key rsa or ec")
	}
	env, err := testenv.Start(ctx, testenv.Options{BinDir: c.binDir, Logf: logf})
	if err != nil {
		return err
	}
	defer env.Stop()
	kube, err := kubeClient(env.Kubeconfig)
	if err != nil {
		return err
	}
	began := time.Now()
	ids, err := createIdentities(ctx, kube, o)
	if err != nil {
		return err
	}
	logf("ca storm: %d service accounts and tokens in %d namespaces in %.1fs", len(ids), o.namespaces, time.Since(began).Seconds())
	began = time.Now()
	if err := parallel(ctx, len(ids), runtime.NumCPU(), func(i int) error { return ids[i].makeCSR(o.key) }); err != nil {
		return err
	}
	logf("ca storm: %d %s CSRs in %.1fs (not counted)", len(ids), o.key, time.Since(began).Seconds())
	return stormMeshd(ctx, c, o, env, kube, ids, logf)
}

// stormMeshd starts meshd with its secure port, waits for its root in
// every namespace, fires the storm(s) and reports.
func stormMeshd(ctx context.Context, c config, o caStormOpts, env *testenv.Env, kube kubernetes.Interface,
	ids []caIdentity, logf func(string, ...any)) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	md, err := startMeshd(c.meshdBin, env.Kubeconfig, env.Dir, c.env, "--secure-xds-address", addr, "--custom-host", "localhost")
	if err != nil {
		return err
	}
	defer md.stop()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := md.waitReady(rctx, 0); err != nil {
		return err
	}
	root, err := waitRoots(rctx, kube, o.namespaces)
	if err != nil {
		return err
	}
	// Let meshd's start-up work (ConfigMaps published, informers synced)
	// drain from its client's rate limiter before the storm.
	time.Sleep(3 * time.Second)
	s, err := newStormer(ctx, addr, root, o, env, md)
	if err != nil {
		return err
	}
	defer s.close()
	res := newCAResult(c, o)
	err = s.runs(ctx, c, ids, res, logf)
	if werr := res.write(c.out, caName(c, o)); err == nil {
		err = werr
	}
	return err
}

// kubeClient is a client for the bench's own writes, not rate-limited in
// practice.
func kubeClient(kubeconfig string) (kubernetes.Interface, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 1000, 2000
	return kubernetes.NewForConfig(cfg)
}

// caNamespace is the i-th namespace of the CA storm.
func caNamespace(i int) string { return fmt.Sprintf("castorm-%d", i) }

// createIdentities creates the istio namespace, o.namespaces namespaces and
// o.n service accounts spread over them, each with a TokenRequest token for
// Istio's CA audience (as the kubelet mounts as istio-token).
func createIdentities(ctx context.Context, kube kubernetes.Interface, o caStormOpts) ([]caIdentity, error) {
	names := []string{istioNS}
	for i := range o.namespaces {
		names = append(names, caNamespace(i))
	}
	for _, n := range names {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: n}}
		if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return nil, fmt.Errorf("creating namespace %s: %w", n, err)
		}
	}
	ids := make([]caIdentity, o.n)
	err := parallel(ctx, o.n, 32, func(i int) error {
		id := &ids[i]
		id.ns, id.sa = caNamespace(i%o.namespaces), fmt.Sprintf("sa-%d", i)
		id.spiffe = fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", domain, id.ns, id.sa)
		sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: id.sa}}
		if _, err := kube.CoreV1().ServiceAccounts(id.ns).Create(ctx, sa, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating service account %s/%s: %w", id.ns, id.sa, err)
		}
		exp := int64(3600)
		tr, err := kube.CoreV1().ServiceAccounts(id.ns).CreateToken(ctx, id.sa, &authnv1.TokenRequest{
			Spec: authnv1.TokenRequestSpec{Audiences: []string{"istio-ca"}, ExpirationSeconds: &exp}}, metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("token of %s/%s: %w", id.ns, id.sa, err)
		}
		id.token = tr.Status.Token
		return nil
	})
	return ids, err
}

// makeCSR generates the identity's key (RSA 2048 or P-256) and a CSR
// naming its SPIFFE ID only, as pilot-agent does.
func (id *caIdentity) makeCSR(kind string) error {
	var key crypto.Signer
	var err error
	if kind == "ec" {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	} else {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		return err
	}
	u, err := url.Parse(id.spiffe)
	if err != nil {
		return err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{URIs: []*url.URL{u}}, key)
	if err != nil {
		return err
	}
	id.csr, id.pub = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key.Public()
	return nil
}

// waitRoots waits until meshd has published istio-ca-root-cert in every
// storm namespace and returns its root-cert.pem (the same everywhere).
func waitRoots(ctx context.Context, kube kubernetes.Interface, namespaces int) ([]byte, error) {
	var root string
	for i := 0; i < namespaces; {
		cm, err := kube.CoreV1().ConfigMaps(caNamespace(i)).Get(ctx, "istio-ca-root-cert", metav1.GetOptions{})
		switch {
		case err == nil && cm.Data["root-cert.pem"] != "":
			if root != "" && root != cm.Data["root-cert.pem"] {
				return nil, fmt.Errorf("istio-ca-root-cert of %s differs from the others", caNamespace(i))
			}
			root = cm.Data["root-cert.pem"]
			i++
			continue
		case ctx.Err() != nil:
			return nil, fmt.Errorf("istio-ca-root-cert in %s: %w", caNamespace(i), ctx.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return []byte(root), nil
}
