// Command bench measures meshd at scale: it starts the real Kubernetes API
// (e2e/testenv's etcd and kube-apiserver), builds a mesh of S services with
// E endpoints, and for each protocol (delta, as Istio's sidecars speak it,
// then state of the world) starts the real meshd binary against it,
// connects P simulated sidecars (hack/loadgen/fleet) and measures the
// connect storm, endpoint churn (a rolling update), a canary weight
// change, meshd's memory and CPU per phase, and finally what a restarted
// meshd sends proxies that reconnect presenting what they hold. With
// --sidecar-scope the same runs follow on a mesh where every namespace has
// a Sidecar (egress ./* and istio-system/*), where the canary is a
// VirtualService change only one namespace sees. --runs N repeats every
// protocol and scenario. It writes a side-by-side markdown table (ranges
// over the runs) and JSON to hack/bench-results/ and prints the table.
//
//	make bench                                   # 500 services, 5,000 endpoints, 1,000 proxies, delta and SotW
//	bin/bench --services 1000 --endpoints 10000 --proxies 2000 --runs 3 --sidecar-scope
//	bin/bench --sotw                             # state of the world only (--delta: delta only)
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
	"slices"
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
	labels                                   bool
	// protocols to measure, in order ("delta", "sotw"); scenarios
	// ("unscoped", "scoped": every namespace with a Sidecar ./* and
	// istio-system/*), each on a mesh of its own.
	protocols, scenarios        []string
	perConn, rounds, runs       int
	reconnect                   bool
	out, name, meshdBin, binDir string
	stormTimeout, changeTimeout time.Duration
	profile                     bool
	profileSeconds              int
	env                         []string
	selfProfile                 map[string]bool // phases to profile the load generator in
	// multiplexed says why streams share connections (--streams-per-conn
	// raised to fit the file-descriptor limit), "" if they do not.
	multiplexed string
}

const (
	protoDelta = "delta"
	protoSotW  = "sotw"
	unscoped   = "unscoped"
	scoped     = "scoped"
)

func main() {
	tuneLoadgenGC()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func parseFlags() (config, error) {
	var c config
	var env, self, protocols, scenarios string
	var delta, sotw, sidecarScope bool
	flag.IntVar(&c.services, "services", 500, "services in the mesh")
	flag.IntVar(&c.endpoints, "endpoints", 5000, "endpoints in total, spread evenly over the services")
	flag.IntVar(&c.proxies, "proxies", 1000, "simulated sidecars")
	flag.IntVar(&c.namespaces, "namespaces", 0, "namespaces (default: one per 50 services)")
	flag.BoolVar(&c.labels, "labels", true, "give each proxy the labels of a service's workload (app=svc-N): one scope per workload, as in a real mesh; false: one scope per namespace")
	flag.StringVar(&protocols, "protocols", "delta,sotw", "xDS protocols to measure, comma-separated, each on the same mesh one after the other (delta: as Istio's sidecars since 1.22; sotw: state of the world)")
	flag.BoolVar(&sotw, "sotw", false, "state of the world only (--protocols sotw)")
	flag.BoolVar(&delta, "delta", false, "delta only (--protocols delta)")
	flag.BoolVar(&sidecarScope, "sidecar-scope", false, "also run the Sidecar-scoped scenario (every namespace has a Sidecar with egress hosts ./* and istio-system/*) after the unscoped one")
	flag.StringVar(&scenarios, "scenarios", "", "scenarios, comma-separated: unscoped, scoped (default: unscoped, plus scoped with --sidecar-scope)")
	flag.IntVar(&c.runs, "runs", 1, "runs of every protocol and scenario (a fresh meshd each); the report gives ranges (min–max)")
	flag.BoolVar(&c.reconnect, "reconnect", true, "end each run by restarting meshd and reconnecting every proxy with what it holds, counting what meshd sends")
	flag.IntVar(&c.perConn, "streams-per-conn", 1, "ADS streams per gRPC connection of the load generator (1: a connection per proxy, as Envoy; raised if the file-descriptor limit cannot hold them)")
	flag.IntVar(&c.rounds, "rounds", 3, "endpoint-churn and canary changes to measure")
	flag.StringVar(&c.out, "out", "hack/bench-results", "directory for the results")
	flag.StringVar(&c.name, "name", "", "results file name (default s<S>-e<E>-p<P>)")
	flag.StringVar(&c.meshdBin, "meshd", "bin/meshd", "meshd binary")
	flag.StringVar(&c.binDir, "testenv-bin", "bin", "directory of kube-apiserver and etcd (make testenv)")
	flag.DurationVar(&c.stormTimeout, "storm-timeout", 5*time.Minute, "longest wait for every proxy's full config")
	flag.DurationVar(&c.changeTimeout, "change-timeout", 30*time.Second, "longest wait for a change to reach every watching proxy")
	flag.BoolVar(&c.profile, "profile", true, "save meshd CPU (connect storm) and heap profiles next to the results (first run of each protocol and scenario)")
	flag.IntVar(&c.profileSeconds, "profile-seconds", 20, "length of the connect-storm CPU profile")
	flag.StringVar(&self, "loadgen-profile", "", "phases (storm, churn, canary; comma-separated) to save a CPU profile of the load generator in, as <name>-loadgen-cpu-<phase>.pprof")
	flag.StringVar(&env, "meshd-env", "", "extra environment for meshd, comma-separated K=V (e.g. PILOT_DEBOUNCE_AFTER=50ms)")
	flag.Parse()
	set := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	if c.protocols, err = resolveProtocols(protocols, set["protocols"], delta, sotw); err != nil {
		return c, err
	}
	if c.scenarios, err = resolveScenarios(scenarios, sidecarScope); err != nil {
		return c, err
	}
	if c.runs < 1 {
		return c, fmt.Errorf("--runs must be at least 1")
	}
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
	return c, nil
}

// resolveProtocols turns --protocols (explicit: given on the command
// line), --delta and --sotw into the protocols to run.
func resolveProtocols(list string, explicit, delta, sotw bool) ([]string, error) {
	if (delta || sotw) && explicit {
		return nil, fmt.Errorf("--delta and --sotw are shorthands for --protocols: give one or the other")
	}
	switch {
	case delta && sotw:
		return []string{protoDelta, protoSotW}, nil
	case delta:
		return []string{protoDelta}, nil
	case sotw:
		return []string{protoSotW}, nil
	}
	return splitList("--protocols", list, protoDelta, protoSotW)
}

// resolveScenarios turns --scenarios and --sidecar-scope into the
// scenarios to run.
func resolveScenarios(list string, sidecarScope bool) ([]string, error) {
	if list == "" {
		if sidecarScope {
			return []string{unscoped, scoped}, nil
		}
		return []string{unscoped}, nil
	}
	out, err := splitList("--scenarios", list, unscoped, scoped)
	if err == nil && sidecarScope && !slices.Contains(out, scoped) {
		out = append(out, scoped)
	}
	return out, err
}

// splitList splits a comma-separated flag value whose items must be among
// allowed, keeping the order given and dropping repeats.
func splitList(flagName, list string, allowed ...string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(list, ",") {
		p = strings.TrimSpace(strings.ToLower(p))
		if p == "" || slices.Contains(out, p) {
			continue
		}
		if !slices.Contains(allowed, p) {
			return nil, fmt.Errorf("%s: unknown %q (want %s)", flagName, p, strings.Join(allowed, ", "))
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: none given", flagName)
	}
	return out, nil
}

func run() error {
	c, err := parseFlags()
	if err != nil {
		return err
	}
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
	logf := func(format string, args ...any) {
		fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
	}
	if caOpts.n > 0 { // --ca-storm: certificate issuance instead (castorm.go)
		return runCAStorm(ctx, c, logf)
	}
	// A connection per proxy is a descriptor per proxy here and in meshd
	// (which inherits the limit): raise the soft limit, or share
	// connections if even the hard one cannot hold them.
	limit, err := raiseNoFile()
	if err != nil {
		logf("file-descriptor limit: %v", err)
	}
	if perConn, why := fitStreams(c.proxies, c.perConn, limit); perConn != c.perConn {
		logf("streams multiplexed: %s", why)
		c.perConn, c.multiplexed = perConn, why
	}
	sum := newSummary(c)
	for _, scen := range c.scenarios {
		if err := runScenario(ctx, c, scen, sum, logf); err != nil {
			if werr := sum.write(c.out, c.name); werr != nil {
				logf("writing the partial results: %v", werr)
			}
			return fmt.Errorf("%s scenario: %w", scen, err)
		}
	}
	return sum.write(c.out, c.name)
}

// canaryWeight is svc-0's weight in canary round r: 80 down to 10, over
// again; never the previous round's (nor the initial 90).
func canaryWeight(r int) int32 { return int32(80 - 10*(r%8)) }

// kubeMesh starts etcd and kube-apiserver and creates the mesh in them
// (with a Sidecar per namespace if scoped). The returned Env (if not nil)
// must be stopped.
func kubeMesh(ctx context.Context, c config, scopedMesh bool, logf func(string, ...any)) (*testenv.Env, *mesh, error) {
	env, err := testenv.Start(ctx, testenv.Options{BinDir: c.binDir, Logf: logf})
	if err != nil {
		return nil, nil, err
	}
	m, err := newMesh(env.Kubeconfig, c.services, c.endpoints, c.namespaces)
	if err != nil {
		return env, nil, err
	}
	m.scoped = scopedMesh
	began := time.Now()
	if err := m.create(ctx); err != nil {
		return env, nil, err
	}
	m.createSeconds = time.Since(began).Seconds()
	logf("mesh: %d services, %d endpoints, %d namespaces (Sidecars: %v) created in %.1fs", c.services, c.endpoints,
		c.namespaces, scopedMesh, m.createSeconds)
	return env, m, nil
}

// changes measures c.rounds changes made by write(round), each watched
// on resource name(round) of type typ by the proxies that subscribe to it
// (and, if sees is set, for which it holds), with meshd's push status
// after each; next, if set, moves to the next round's target.
func changes(ctx context.Context, c config, f *fleet.Fleet, md *meshdProc, typ string,
	name func(int) string, sees func(*fleet.Proxy) bool, write func(int) error, next func()) (Change, error) {
	res := newChange()
	for r := range c.rounds {
		a0, g0, ok0 := md.allocStats()
		if err := round(ctx, f, typ, name(r), sees, func() error { return write(r) }, c.changeTimeout, &res); err != nil {
			return res, err
		}
		res.Pushes = append(res.Pushes, md.pushStatus())
		if a1, g1, ok1 := md.allocStats(); ok0 && ok1 {
			res.MeshdAllocatedMB = append(res.MeshdAllocatedMB, (a1-a0)/(1<<20))
			res.MeshdGCs = append(res.MeshdGCs, int(g1-g0))
		}
		if next != nil {
			next()
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
