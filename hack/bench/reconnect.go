package main

import (
	"context"
	"time"

	"github.com/meshd/meshd/e2e/testenv"
	"github.com/meshd/meshd/hack/loadgen/fleet"
)

// Reconnect is the last phase of a run: meshd restarts with the same
// configuration and every proxy reconnects presenting what it holds
// (state of the world: each type's last version and its subscription;
// delta: initial_resource_versions), as Envoy does; what the restarted
// meshd sends them is counted by the proxies, per type.
type Reconnect struct {
	fleet.Resumed
	// MeshdReadySeconds is the restarted meshd's start-up; PeakMB its
	// peak RSS during the reconnection, CPUSeconds its CPU then.
	MeshdReadySeconds float64 `json:"meshdReadySeconds"`
	PeakMB            float64 `json:"meshdPeakRSSMB"`
	CPUSeconds        float64 `json:"meshdCPUSeconds"`
}

// bytesTotal is what every proxy received in the reconnection.
func (r *Reconnect) bytesTotal() int { return sum(r.Bytes) }

// reconnect takes what the fleet's proxies hold, closes the fleet, restarts
// meshd (old stops, a new one starts on the same cluster with the same
// settings) and reconnects them to it.
func reconnect(ctx context.Context, c config, env *testenv.Env, dir string, f *fleet.Fleet, md *meshdProc, proto string,
	logf func(string, ...any)) (*Reconnect, error) {
	held := f.Held()
	f.Close()
	md.stop()
	began := time.Now()
	md2, err := startMeshd(c.meshdBin, env.Kubeconfig, dir, c.env)
	if err != nil {
		return nil, err
	}
	defer md2.stop()
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	err = md2.waitReady(rctx, c.services)
	cancel()
	if err != nil {
		return nil, err
	}
	out := &Reconnect{MeshdReadySeconds: time.Since(began).Seconds()}
	pid := md2.cmd.Process.Pid
	smp := newSampler(pid, 50*time.Millisecond)
	defer smp.close()
	u0, _ := readUsage(pid)
	out.Resumed, err = f.Resume(ctx, held, fleet.ResumeOptions{Address: md2.xdsAddr, StreamsPerConn: c.perConn,
		Delta: proto == protoDelta, Timeout: c.stormTimeout})
	u1, _ := readUsage(pid)
	out.PeakMB, out.CPUSeconds = mb(smp.takePeak()), (u1.CPU - u0.CPU).Seconds()
	logf("reconnect: %d/%d proxies back, %d streams (%d refused), %s received by %d proxies (%s), resources %s",
		out.Reconnected, out.Proxies, out.Streams, out.Refused, kb(out.bytesTotal()), out.PushedProxies,
		counts(out.Responses), counts(out.Resources))
	return out, err
}
