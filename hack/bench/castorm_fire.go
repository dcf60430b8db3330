package main

import (
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	pb "istio.io/api/security/v1alpha1"

	"github.com/meshd/meshd/e2e/testenv"
)

// istiodName is the name the secure port's certificate is verified for,
// as pilot-agent does.
const istiodName = "istiod." + istioNS + ".svc"

// certTTL is the validity asked for: pilot-agent's default SECRET_TTL.
const certTTL = 24 * time.Hour

// stormer fires CreateCertificate storms over a few established TLS
// connections and measures meshd, the API server and etcd meanwhile.
type stormer struct {
	o                 caStormOpts
	conns             []*grpc.ClientConn
	roots             *x509.CertPool
	env               *testenv.Env
	md                *meshdProc
	apiPID, etcdPID   int
	sampler           *sampler
	profile, profName string // a CPU profile of meshd during one run
}

// bearer sends a caller's token as "authorization: Bearer <token>".
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return true }

// newStormer opens o.conns TLS connections to addr, verified against
// rootPEM for istiodName, and waits until each is ready.
func newStormer(ctx context.Context, addr string, rootPEM []byte, o caStormOpts, env *testenv.Env, md *meshdProc) (*stormer, error) {
	s := &stormer{o: o, roots: x509.NewCertPool(), env: env, md: md,
		apiPID: childPID("kube-apiserver"), etcdPID: childPID("etcd")}
	if !s.roots.AppendCertsFromPEM(rootPEM) {
		return nil, errors.New("istio-ca-root-cert: no certificate in root-cert.pem")
	}
	creds := credentials.NewTLS(&tls.Config{RootCAs: s.roots, ServerName: istiodName, MinVersion: tls.VersionTLS12})
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for range o.conns {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			s.close()
			return nil, err
		}
		s.conns = append(s.conns, conn)
		conn.Connect()
		for st := conn.GetState(); st != connectivity.Ready; st = conn.GetState() {
			if !conn.WaitForStateChange(ctx, st) {
				s.close()
				return nil, fmt.Errorf("TLS connection to %s: %v (last state %v)", addr, ctx.Err(), st)
			}
		}
	}
	s.sampler = newSampler(md.cmd.Process.Pid, 50*time.Millisecond)
	return s, nil
}

func (s *stormer) close() {
	for _, c := range s.conns {
		c.Close()
	}
	if s.sampler != nil {
		s.sampler.close()
	}
}

// runs fires the first storm (a TokenReview per token) and, with
// --ca-storm-again, the same calls again while every token is cached.
// It fails if any call failed or any chain did not verify.
func (s *stormer) runs(ctx context.Context, c config, ids []caIdentity, res *caResult, logf func(string, ...any)) error {
	names := []string{"first: a TokenReview per token"}
	if s.o.again {
		names = append(names, "again: tokens cached, signing only")
	}
	for i, name := range names {
		prof := ""
		if c.profile && i == len(names)-1 { // one CPU profile at a time: the last run's
			prof = filepath.Join(c.out, caName(c, s.o)+"-cpu.pprof")
			res.Profile = prof
		}
		r, err := s.measure(ctx, name, ids, prof, c.profileSeconds)
		res.Runs = append(res.Runs, r)
		logf("ca storm %s: %d calls in %.2fs, p50 %.0fms p99 %.0fms max %.0fms, %d errors, %d verified, %d TokenReviews, meshd CPU %.2fs",
			name, r.Calls, r.WallSeconds, r.Latency.P50Ms, r.Latency.P99Ms, r.Latency.MaxMs, r.Errors, r.Verified,
			r.TokenReviews, r.MeshdCPU)
		if err != nil {
			return fmt.Errorf("ca storm %s: %w", name, err)
		}
	}
	return nil
}

// snapshot is the counters a run is measured by, at one moment.
type snapshot struct {
	meshd, api, etcd, self usage
	reviews, issued        float64
}

func (s *stormer) snap() snapshot {
	var sn snapshot
	sn.meshd, _ = readUsage(s.md.cmd.Process.Pid)
	sn.api, _ = readUsage(s.apiPID)
	sn.etcd, _ = readUsage(s.etcdPID)
	sn.self, _ = readUsage(os.Getpid())
	sn.reviews = s.apiCounter("apiserver_request_total", `resource="tokenreviews"`)
	_, body := s.md.get("/metrics")
	sn.issued = promSum(body, "citadel_server_success_cert_issuance_count")
	return sn
}

// measure fires one storm (profiling meshd into prof if set) and checks
// every answer.
func (s *stormer) measure(ctx context.Context, name string, ids []caIdentity, prof string, secs int) (caRun, error) {
	r := caRun{Name: name, Calls: len(ids)}
	var profDone chan struct{}
	if prof != "" {
		profDone = make(chan struct{})
		go func() { _ = s.md.save(fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), prof); close(profDone) }()
		time.Sleep(200 * time.Millisecond) // the profile has begun
	}
	s.sampler.takePeak()
	before := s.snap()
	chains, lat, errs, wall := s.fire(ctx, ids)
	after := s.snap()
	r.fill(before, after, s.sampler.takePeak())
	r.WallSeconds, r.Latency, r.ErrorsByCode = wall.Seconds(), latency(lat), errs
	for _, n := range errs {
		r.Errors += n
	}
	var verr error
	r.Verified, verr = s.verify(ids, chains)
	if profDone != nil {
		<-profDone
	}
	switch {
	case r.Errors > 0:
		return r, fmt.Errorf("%d of %d calls failed: %v", r.Errors, r.Calls, errs)
	case verr != nil:
		return r, verr
	}
	return r, nil
}

// fire sends every identity's CreateCertificate at once, spread over the
// connections, with no client-side cap on concurrency. It returns each
// call's chain, latency (from the storm's start), the errors by code and
// the time until the last answer.
func (s *stormer) fire(ctx context.Context, ids []caIdentity) ([][]string, []time.Duration, map[string]int, time.Duration) {
	chains, lat := make([][]string, len(ids)), make([]time.Duration, len(ids))
	var (
		mu   sync.Mutex
		errs = map[string]int{}
		wg   sync.WaitGroup
		t0   time.Time
	)
	start := make(chan struct{})
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := pb.NewIstioCertificateServiceClient(s.conns[i%len(s.conns)])
			req := &pb.IstioCertificateRequest{Csr: string(ids[i].csr), ValidityDuration: int64(certTTL.Seconds())}
			<-start
			cctx, cancel := context.WithTimeout(ctx, s.o.timeout)
			defer cancel()
			resp, err := client.CreateCertificate(cctx, req, grpc.PerRPCCredentials(bearer(ids[i].token)))
			lat[i] = time.Since(t0)
			if err != nil {
				mu.Lock()
				errs[status.Code(err).String()+": "+status.Convert(err).Message()]++
				mu.Unlock()
				return
			}
			chains[i] = resp.GetCertChain()
		}()
	}
	time.Sleep(100 * time.Millisecond) // every goroutine waits at start
	t0 = time.Now()
	close(start)
	wg.Wait()
	return chains, lat, errs, time.Since(t0)
}

// verify checks that every chain's leaf verifies against the root through
// the chain's intermediates, names exactly its caller's SPIFFE ID and
// certifies its CSR's key. It returns how many did; the error names the
// first that did not.
func (s *stormer) verify(ids []caIdentity, chains [][]string) (int, error) {
	var first error
	ok := 0
	for i, chain := range chains {
		if chain == nil {
			continue // failed call, counted as an error
		}
		err := verifyChain(chain, s.roots, ids[i])
		if err == nil {
			ok++
		} else if first == nil {
			first = fmt.Errorf("certificate of %s: %w", ids[i].spiffe, err)
		}
	}
	return ok, first
}

// verifyChain checks one CreateCertificate answer (leaf first, root last).
func verifyChain(chain []string, roots *x509.CertPool, id caIdentity) error {
	var certs []*x509.Certificate
	for _, p := range chain {
		block, _ := pem.Decode([]byte(p))
		if block == nil {
			return errors.New("chain entry without PEM block")
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return err
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return errors.New("empty chain")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	leaf := certs[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return err
	}
	if len(leaf.URIs) != 1 || leaf.URIs[0].String() != id.spiffe {
		return fmt.Errorf("leaf names %v", leaf.URIs)
	}
	if k, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(id.pub) {
		return errors.New("leaf does not certify the CSR's key")
	}
	return nil
}
