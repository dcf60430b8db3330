// Command bench measures meshd at scale: it starts the real Kubernetes API
// (e2e/testenv's etcd and kube-apiserver), builds a mesh of S services with
// E endpoints, starts the real meshd binary against it, connects P
// simulated sidecars (hack/loadgen/fleet) and measures the connect storm,
// endpoint churn (a rolling update), a canary weight change, and meshd's
// memory and CPU per phase. It writes a markdown table and JSON to
// hack/bench-results/ and prints the table.
//
//	make bench                                   # 500 services, 5,000 endpoints, 1,000 proxies
//	bin/bench --services 1000 --endpoints 10000 --proxies 2000
//
// The endpoint addresses are fake (10.251.x.y): nothing dials them, so no
// network namespace is needed.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meshd/meshd/e2e/testenv"
	"github.com/meshd/meshd/hack/loadgen/fleet"
)

// config is the command line.
type config struct {
	services, endpoints, proxies, namespaces int
	labels, delta                            bool
	perConn, rounds                          int
	out, name, meshdBin, binDir              string
	stormTimeout, changeTimeout              time.Duration
	profile                                  bool
	profileSeconds                           int
	env                                      []string
	selfProfile                              map[string]bool // phases to profile the load generator in
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags() config {
	var c config
	var env, self string
	flag.IntVar(&c.services, "services", 500, "services in the mesh")
	flag.IntVar(&c.endpoints, "endpoints", 5000, "endpoints in total, spread evenly over the services")
	flag.IntVar(&c.proxies, "proxies", 1000, "simulated sidecars")
	flag.IntVar(&c.namespaces, "namespaces", 0, "namespaces (default: one per 50 services)")
	flag.BoolVar(&c.labels, "labels", true, "give each proxy the labels of a service's workload (app=svc-N): one scope per workload, as in a real mesh; false: one scope per namespace")
	flag.BoolVar(&c.delta, "delta", false, "proxies speak delta xDS instead of state of the world")
	flag.IntVar(&c.perConn, "streams-per-conn", 1, "ADS streams per gRPC connection of the load generator (1: a connection per proxy, as Envoy)")
	flag.IntVar(&c.rounds, "rounds", 3, "endpoint-churn and canary changes to measure")
	flag.StringVar(&c.out, "out", "hack/bench-results", "directory for the results")
	flag.StringVar(&c.name, "name", "", "results file name (default s<S>-e<E>-p<P>)")
	flag.StringVar(&c.meshdBin, "meshd", "bin/meshd", "meshd binary")
	flag.StringVar(&c.binDir, "testenv-bin", "bin", "directory of kube-apiserver and etcd (make testenv)")
	flag.DurationVar(&c.stormTimeout, "storm-timeout", 5*time.Minute, "longest wait for every proxy's full config")
	flag.DurationVar(&c.changeTimeout, "change-timeout", 30*time.Second, "longest wait for a change to reach every watching proxy")
	flag.BoolVar(&c.profile, "profile", true, "save meshd CPU (connect storm) and heap profiles next to the results")
	flag.IntVar(&c.profileSeconds, "profile-seconds", 20, "length of the connect-storm CPU profile")
	flag.StringVar(&self, "loadgen-profile", "", "phases (storm, churn, canary; comma-separated) to save a CPU profile of the load generator in, as <name>-loadgen-cpu-<phase>.pprof")
	flag.StringVar(&env, "meshd-env", "", "extra environment for meshd, comma-separated K=V (e.g. PILOT_DEBOUNCE_AFTER=50ms)")
	flag.Parse()
	if c.namespaces <= 0 {
		c.namespaces = max(1, c.services/50)
	}
	if c.name == "" {
		c.name = fmt.Sprintf("s%d-e%d-p%d", c.services, c.endpoints, c.proxies)
	}
	if env != "" {
		c.env = strings.Split(env, ",")
	}
	c.selfProfile = map[string]bool{}
	for _, p := range strings.Split(self, ",") {
		if p != "" {
			c.selfProfile[p] = true
		}
	}
	return c
}

func run() error {
	c := parseFlags()
	if c.services < 2 || c.endpoints < c.services || c.proxies < 1 {
		return fmt.Errorf("need at least 2 services, one endpoint per service and one proxy")
	}
	if c.endpoints/c.services > 1000 {
		return fmt.Errorf("at most 1,000 endpoints per service (one EndpointSlice each)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := os.MkdirAll(c.out, 0o755); err != nil {
		return err
	}
	res := newResult(c)
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
	if caOpts.n > 0 { // --ca-storm: certificate issuance instead (castorm.go)
		return runCAStorm(ctx, c, logf)
	}

	// 1. The Kubernetes API and the mesh in it.
	env, m, err := kubeMesh(ctx, c, res, logf)
	if env != nil {
		defer env.Stop()
	}
	if err != nil {
		return err
	}

	// 2. meshd.
	began := time.Now()
	md, err := startMeshd(c.meshdBin, env.Kubeconfig, env.Dir, c.env)
	if err != nil {
		return err
	}
	defer md.stop()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = md.waitReady(rctx, c.services)
	cancel()
	if err != nil {
		return err
	}
	res.Setup.MeshdReadySeconds = time.Since(began).Seconds()
	pid := md.cmd.Process.Pid
	smp := newSampler(pid, 50*time.Millisecond)
	defer smp.close()
	ph := newPhases(pid, began)
	res.Phases = append(res.Phases, ph.end("startup (watch, first build)", smp.takePeak()))
	logf("meshd ready in %.1fs", res.Setup.MeshdReadySeconds)

	// 3. Connect storm.
	profDone := cpuProfile(c, md, "storm", res, logf)
	stopSelf := selfProfile(c, "storm", logf)
	if c.profile {
		// What is live while the proxies are being configured (the peak
		// RSS comes from here): a heap profile 3 s into the storm.
		go func() {
			time.Sleep(3 * time.Second)
			file := filepath.Join(c.out, c.name+"-heap-storm.pprof")
			if err := md.save("/debug/pprof/heap?gc=1", file); err != nil {
				logf("heap profile: %v", err)
			}
		}()
	}
	opts := fleet.Options{Address: md.xdsAddr, Proxies: c.proxies, Namespaces: namespaces(m), StreamsPerConn: c.perConn,
		Delta: c.delta}
	if c.labels {
		opts.Labels = func(i int) map[string]string { return map[string]string{"app": m.service(workloadOf(m, i))} }
	}
	f, st, err := storm(ctx, opts, c.stormTimeout)
	if f != nil {
		defer f.Close()
	}
	res.Storm = st
	stopSelf()
	res.Phases = append(res.Phases, ph.end("connect storm", smp.takePeak()))
	logf("connect storm: %d/%d configured, p50 %.0fms p99 %.0fms max %.0fms, %d streams", st.Configured, st.Proxies,
		st.Latency.P50Ms, st.Latency.P99Ms, st.Latency.MaxMs, st.Streams)
	if err != nil {
		return err
	}
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	_ = f.WaitQuiet(qctx, 2*time.Second)
	cancel()
	// The storm's profiles are taken (their encoding is garbage in meshd's
	// heap), then the idle state's, each after a forced collection — the
	// last collects the others' garbage — then meshd idles, so that the
	// changes find it as an idle meshd is rather than with the profiler's
	// leftovers filling its heap towards a collection.
	<-profDone
	if c.profile {
		res.Memory.GoRuntime = md.memStats()
		file := filepath.Join(c.out, c.name+"-heap.pprof")
		if err := md.save("/debug/pprof/heap?gc=1", file); err != nil {
			logf("heap profile: %v", err)
		} else {
			res.addProfile(file)
		}
	}
	time.Sleep(3 * time.Second)
	res.Phases = append(res.Phases, ph.end("steady (idle)", smp.takePeak()))

	// 4. Endpoint churn: one EndpointSlice changes per round.
	profDone = cpuProfile(c, md, "churn", res, logf)
	stopSelf = selfProfile(c, "churn", logf)
	churned := func(r int) int { return (r*37 + 5) % c.services }
	res.Churn, err = changes(ctx, c, f, md, "eds", func(r int) string { return m.clusterName(churned(r)) },
		func(r int) error { return m.rollEndpoint(ctx, churned(r)) })
	stopSelf()
	if err != nil {
		return fmt.Errorf("endpoint churn: %w", err)
	}
	res.Phases = append(res.Phases, ph.end("endpoint churn", smp.takePeak()))
	logChange(logf, "endpoint churn", res.Churn)

	// 5. Canary, profiled on its own (after the churn profile ends).
	<-profDone
	profDone = cpuProfile(c, md, "canary", res, logf)
	stopSelf = selfProfile(c, "canary", logf)
	// svc-0's VirtualService shifts 10 points of weight per round
	// (80, 70, ... 10, then 80 again: every round changes it, from the 90
	// it was created with).
	res.Canary, err = changes(ctx, c, f, md, "rds", func(int) string { return fmt.Sprint(servicePort) },
		func(r int) error { return m.setWeight(ctx, 0, canaryWeight(r)) })
	stopSelf()
	if err != nil {
		return fmt.Errorf("canary: %w", err)
	}
	res.Phases = append(res.Phases, ph.end("canary", smp.takePeak()))
	logChange(logf, "canary", res.Canary)

	<-profDone
	res.finish(ph)
	return res.write(c.out, c.name)
}

// canaryWeight is svc-0's weight in canary round r: 80 down to 10, over
// again; never the previous round's (nor the initial 90).
func canaryWeight(r int) int32 { return int32(80 - 10*(r%8)) }

// kubeMesh starts etcd and kube-apiserver and creates the mesh in them.
// The returned Env (if not nil) must be stopped.
func kubeMesh(ctx context.Context, c config, res *Result, logf func(string, ...any)) (*testenv.Env, *mesh, error) {
	env, err := testenv.Start(ctx, testenv.Options{BinDir: c.binDir, Logf: logf})
	if err != nil {
		return nil, nil, err
	}
	m, err := newMesh(env.Kubeconfig, c.services, c.endpoints, c.namespaces)
	if err != nil {
		return env, nil, err
	}
	began := time.Now()
	if err := m.create(ctx); err != nil {
		return env, nil, err
	}
	res.Setup.MeshCreateSeconds = time.Since(began).Seconds()
	logf("mesh: %d services, %d endpoints, %d namespaces created in %.1fs", c.services, c.endpoints, c.namespaces,
		res.Setup.MeshCreateSeconds)
	return env, m, nil
}

// changes measures c.rounds changes made by write(round), each watched
// on resource name(round) of type typ, with meshd's push status after each.
func changes(ctx context.Context, c config, f *fleet.Fleet, md *meshdProc, typ string,
	name func(int) string, write func(int) error) (Change, error) {
	res := newChange()
	for r := range c.rounds {
		a0, g0, ok0 := md.allocStats()
		if err := round(ctx, f, typ, name(r), func() error { return write(r) }, c.changeTimeout, &res); err != nil {
			return res, err
		}
		res.Pushes = append(res.Pushes, md.pushStatus())
		if a1, g1, ok1 := md.allocStats(); ok0 && ok1 {
			res.MeshdAllocatedMB = append(res.MeshdAllocatedMB, (a1-a0)/(1<<20))
			res.MeshdGCs = append(res.MeshdGCs, int(g1-g0))
		}
	}
	res.perRound()
	return res, nil
}

func logChange(logf func(string, ...any), what string, ch Change) {
	logf("%s: %d/%d received, p50 %.0fms p99 %.0fms max %.0fms", what, ch.Received, ch.Watching,
		ch.Latency.P50Ms, ch.Latency.P99Ms, ch.Latency.MaxMs)
}

// cpuProfile saves CPU and allocation profiles of meshd's next
// --profile-seconds in the background (if profiling is on); the channel is
// closed when they are done.
func cpuProfile(c config, md *meshdProc, phase string, res *Result, logf func(string, ...any)) chan struct{} {
	done := make(chan struct{})
	if !c.profile {
		close(done)
		return done
	}
	var wg sync.WaitGroup
	// CPU, and what was allocated meanwhile (a delta of the allocation profile).
	for _, kind := range []string{"cpu", "allocs"} {
		path := fmt.Sprintf("/debug/pprof/profile?seconds=%d", c.profileSeconds)
		if kind == "allocs" {
			path = fmt.Sprintf("/debug/pprof/allocs?seconds=%d", c.profileSeconds)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			file := filepath.Join(c.out, c.name+"-"+kind+"-"+phase+".pprof")
			if err := md.save(path, file); err != nil {
				logf("%s profile: %v", kind, err)
				return
			}
			res.addProfile(file)
		}()
	}
	go func() { wg.Wait(); close(done) }()
	return done
}

// selfProfile starts a CPU profile of the load generator for phase if
// --loadgen-profile names it; the function returned stops it.
func selfProfile(c config, phase string, logf func(string, ...any)) func() {
	if !c.selfProfile[phase] {
		return func() {}
	}
	file := filepath.Join(c.out, c.name+"-loadgen-cpu-"+phase+".pprof")
	pf, err := os.Create(file)
	if err == nil {
		err = pprof.StartCPUProfile(pf)
	}
	if err != nil {
		logf("load generator CPU profile: %v", err)
		if pf != nil {
			pf.Close()
		}
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		if err := pf.Close(); err != nil {
			logf("load generator CPU profile: %v", err)
		}
	}
}

// namespaces lists the mesh's namespaces.
func namespaces(m *mesh) []string {
	out := make([]string, m.namespaces)
	for i := range out {
		out[i] = m.namespace(i)
	}
	return out
}

// workloadOf is the service whose workload proxy i belongs to: a service
// of the proxy's namespace (fleet puts proxy i in namespace i mod N), so
// that P proxies are spread evenly over the services.
func workloadOf(m *mesh, i int) int {
	n := m.namespaces
	perNS := (m.services - i%n + n - 1) / n // services k ≡ i (mod n)
	return i%n + n*((i/n)%perNS)
}
