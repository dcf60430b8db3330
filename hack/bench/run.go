package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/meshd/meshd/e2e/testenv"
	"github.com/meshd/meshd/hack/loadgen/fleet"
)

// runScenario creates the scenario's mesh and measures every protocol on
// it, c.runs times, adding each run to sum (and saving sum after each).
func runScenario(ctx context.Context, c config, scen string, sum *Summary, logf func(string, ...any)) error {
	env, m, err := kubeMesh(ctx, c, scen == scoped, logf)
	if env != nil {
		defer env.Stop()
	}
	if err != nil {
		return err
	}
	for r := 1; r <= c.runs; r++ {
		for _, proto := range c.protocols {
			logf("== %s, %s, run %d of %d", scen, proto, r, c.runs)
			res, err := runOnce(ctx, c, env, m, scen, proto, r, logf)
			if res != nil {
				sum.add(res)
			}
			if err != nil {
				return fmt.Errorf("%s run %d: %w", proto, r, err)
			}
			if err := sum.save(c.out, c.name); err != nil {
				return err
			}
		}
	}
	return nil
}

// runState is one run in progress: its settings (pc: profiles only in a
// protocol's and scenario's first run, files named after both), meshd
// and how its usage is cut into phases.
type runState struct {
	c, pc   config
	scen    string
	proto   string
	env     *testenv.Env
	m       *mesh
	dir     string
	md      *meshdProc
	smp     *sampler
	ph      *phases
	res     *Result
	logf    func(string, ...any)
	profile bool
}

// runOnce starts a fresh meshd on the mesh and measures one protocol:
// connect storm, endpoint churn, canary (in the scoped scenario: the
// VirtualService change seen by one namespace only), then the reconnection
// to a restarted meshd.
func runOnce(ctx context.Context, c config, env *testenv.Env, m *mesh, scen, proto string, runNo int,
	logf func(string, ...any)) (*Result, error) {
	rs := &runState{c: c, pc: c, scen: scen, proto: proto, env: env, m: m, logf: logf, res: newResult(c)}
	res := rs.res
	res.Scale.Protocol, res.Scale.Delta, res.Scale.Scoped, res.Run = proto, proto == protoDelta, scen == scoped, runNo
	res.Setup.MeshCreateSeconds = m.createSeconds
	rs.profile = c.profile && runNo == 1
	rs.pc.profile = rs.profile
	rs.pc.name = fmt.Sprintf("%s-%s", c.name, proto)
	if scen == scoped {
		rs.pc.name += "-scoped"
	}
	if runNo > 1 {
		rs.pc.selfProfile = nil
	}
	if err := rs.startMeshd(ctx); err != nil {
		return nil, err
	}
	defer rs.md.stop()
	defer rs.smp.close()
	f, err := rs.storm(ctx)
	if f != nil {
		defer f.Close()
	}
	if err != nil {
		return res, err
	}
	if err := rs.changes(ctx, f); err != nil {
		return res, err
	}
	// meshd restarts; every proxy reconnects with what it holds.
	if c.reconnect {
		rec, err := reconnect(ctx, c, env, rs.dir, f, rs.md, proto, logf)
		res.Reconnect = rec
		if err != nil {
			return res, fmt.Errorf("reconnect: %w", err)
		}
	}
	return res, nil
}

// startMeshd starts the run's meshd and waits until it serves the mesh.
func (rs *runState) startMeshd(ctx context.Context) error {
	dir, err := os.MkdirTemp(rs.env.Dir, "meshd-")
	if err != nil {
		return err
	}
	rs.dir = dir
	began := time.Now()
	md, err := startMeshd(rs.c.meshdBin, rs.env.Kubeconfig, dir, rs.c.env)
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = md.waitReady(rctx, rs.c.services)
	cancel()
	if err != nil {
		md.stop()
		return err
	}
	rs.md = md
	rs.res.Setup.MeshdReadySeconds = time.Since(began).Seconds()
	pid := md.cmd.Process.Pid
	rs.smp = newSampler(pid, 50*time.Millisecond)
	rs.ph = newPhases(pid, began)
	rs.res.Phases = append(rs.res.Phases, rs.ph.end("startup (watch, first build)", rs.smp.takePeak()))
	rs.logf("meshd ready in %.1fs", rs.res.Setup.MeshdReadySeconds)
	if rs.scen == scoped {
		_, body := md.get("/debug/configz")
		n := strings.Count(string(body), `"kind": "Sidecar"`)
		rs.logf("meshd holds %d Sidecar resources (%d namespaces)", n, rs.m.namespaces)
		if n < rs.m.namespaces {
			rs.logf("WARNING: not every namespace's Sidecar is loaded: the scoped scenario is not scoped")
		}
	}
	return nil
}

// storm connects every proxy at once, then lets meshd idle (after the
// storm's and the connected state's profiles).
func (rs *runState) storm(ctx context.Context) (*fleet.Fleet, error) {
	c, pc, md, res, m := rs.c, rs.pc, rs.md, rs.res, rs.m
	profDone := cpuProfile(pc, md, "storm", res, rs.logf)
	stopSelf := selfProfile(pc, "storm", rs.logf)
	if rs.profile {
		// What is live while the proxies are being configured (the peak
		// RSS comes from here): a heap profile 3 s into the storm.
		go func() {
			time.Sleep(3 * time.Second)
			file := filepath.Join(c.out, pc.name+"-heap-storm.pprof")
			if err := md.save("/debug/pprof/heap?gc=1", file); err != nil {
				rs.logf("heap profile: %v", err)
			}
		}()
	}
	opts := fleet.Options{Address: md.xdsAddr, Proxies: c.proxies, Namespaces: namespaces(m), StreamsPerConn: c.perConn,
		Delta: rs.proto == protoDelta, TrackVersions: c.reconnect}
	if c.labels {
		opts.Labels = func(i int) map[string]string { return map[string]string{"app": m.service(workloadOf(m, i))} }
	}
	f, st, err := storm(ctx, opts, c.stormTimeout)
	res.Storm = st
	stopSelf()
	res.Phases = append(res.Phases, rs.ph.end("connect storm", rs.smp.takePeak()))
	rs.logf("connect storm: %d/%d configured, p50 %.0fms p99 %.0fms max %.0fms, %d streams", st.Configured, st.Proxies,
		st.Latency.P50Ms, st.Latency.P99Ms, st.Latency.MaxMs, st.Streams)
	if err != nil {
		return f, err
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
	if rs.profile {
		res.Memory.GoRuntime = md.memStats()
		file := filepath.Join(c.out, pc.name+"-heap.pprof")
		if err := md.save("/debug/pprof/heap?gc=1", file); err != nil {
			rs.logf("heap profile: %v", err)
		} else {
			res.addProfile(file)
		}
	}
	time.Sleep(3 * time.Second)
	res.Phases = append(res.Phases, rs.ph.end("steady (idle)", rs.smp.takePeak()))
	return f, nil
}

// changes measures the endpoint churn, then the canary (each profiled on
// its own), and sums up meshd's memory.
func (rs *runState) changes(ctx context.Context, f *fleet.Fleet) error {
	c, pc, md, res, m := rs.c, rs.pc, rs.md, rs.res, rs.m
	var err error
	// Endpoint churn: one EndpointSlice changes per round.
	profDone := cpuProfile(pc, md, "churn", res, rs.logf)
	stopSelf := selfProfile(pc, "churn", rs.logf)
	res.Churn, err = changes(ctx, c, f, md, "eds", func(int) string { return m.clusterName(m.churned()) }, nil,
		func(int) error { return m.rollEndpoint(ctx, m.churned()) }, m.nextChurn)
	stopSelf()
	if err != nil {
		return fmt.Errorf("endpoint churn: %w", err)
	}
	res.Phases = append(res.Phases, rs.ph.end("endpoint churn", rs.smp.takePeak()))
	logChange(rs.logf, "endpoint churn", res.Churn)

	// Canary, after the churn profile ends: svc-0's VirtualService shifts
	// 10 points of weight per round. In the scoped scenario only svc-0's
	// namespace sees its host: those proxies are measured, and every proxy
	// that received anything is counted.
	<-profDone
	profDone = cpuProfile(pc, md, "canary", res, rs.logf)
	stopSelf = selfProfile(pc, "canary", rs.logf)
	var sees func(*fleet.Proxy) bool
	if rs.scen == scoped {
		ns := m.namespace(0)
		sees = func(p *fleet.Proxy) bool { return p.Namespace == ns }
	}
	res.Canary, err = changes(ctx, c, f, md, "rds", func(int) string { return fmt.Sprint(servicePort) }, sees,
		func(int) error { return m.setWeight(ctx, 0, m.nextWeight()) }, nil)
	stopSelf()
	if err != nil {
		return fmt.Errorf("canary: %w", err)
	}
	res.Phases = append(res.Phases, rs.ph.end(canaryPhase(rs.scen), rs.smp.takePeak()))
	logChange(rs.logf, canaryPhase(rs.scen), res.Canary)
	<-profDone
	res.finish(rs.ph)
	return nil
}

func canaryPhase(scen string) string {
	if scen == scoped {
		return "scoped VirtualService change"
	}
	return "canary"
}
