package main

import (
	"bufio"
	"debug/buildinfo"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Result is everything one run measured; it is written as JSON.
type Result struct {
	Date    string            `json:"date"`
	Machine map[string]string `json:"machine"`
	Scale   struct {
		Services, Endpoints, Proxies, Namespaces int
		Labels, Delta                            bool
		StreamsPerConn                           int `json:"streamsPerConn"`
		// Multiplexed says why streams shared connections ("" if the
		// connections per proxy asked for were used).
		Multiplexed string `json:"multiplexed,omitempty"`
		// Protocol is "delta" or "sotw"; Scoped: every namespace has a
		// Sidecar (egress ./* and istio-system/*).
		Protocol string `json:"protocol"`
		Scoped   bool   `json:"scoped"`
	} `json:"scale"`
	// Run numbers the run among --runs of its protocol and scenario.
	Run int `json:"run"`
	// Meshd is the binary's VCS revision ("+dirty" if built from a
	// modified tree).
	Meshd    string   `json:"meshd"`
	MeshdEnv []string `json:"meshdEnv,omitempty"`
	Setup    struct {
		MeshCreateSeconds float64 `json:"meshCreateSeconds"`
		MeshdReadySeconds float64 `json:"meshdReadySeconds"`
	} `json:"setup"`
	Storm Storm  `json:"connectStorm"`
	Churn Change `json:"endpointChurn"`
	// Canary: in the scoped scenario, the VirtualService change only one
	// namespace sees.
	Canary Change `json:"canary"`
	// Reconnect: the proxies reconnecting to a restarted meshd.
	Reconnect *Reconnect `json:"reconnect,omitempty"`
	Memory    struct {
		IdleMB   float64 `json:"idleMB"`
		PeakMB   float64 `json:"peakMB"`
		SteadyMB float64 `json:"steadyMB"`
		FinalMB  float64 `json:"finalMB"`
		// GoRuntime: the Go runtime's figures once the proxies are
		// connected, after a forced GC (see meshdProc.memStats).
		GoRuntime string `json:"goRuntime,omitempty"`
	} `json:"memory"`
	Phases   []Phase  `json:"phases"`
	Profiles []string `json:"profiles,omitempty"`

	profilesMu sync.Mutex
}

// addProfile records a saved profile (profiles are saved concurrently).
func (r *Result) addProfile(file string) {
	r.profilesMu.Lock()
	defer r.profilesMu.Unlock()
	r.Profiles = append(r.Profiles, file)
}

// Phase is meshd's (and the load generator's) resource use in one phase.
type Phase struct {
	Name     string  `json:"name"`
	Seconds  float64 `json:"seconds"`
	MeshdCPU float64 `json:"meshdCPUSeconds"`
	BenchCPU float64 `json:"loadgenCPUSeconds"`
	RSSMB    float64 `json:"meshdRSSEndMB"`
	PeakMB   float64 `json:"meshdPeakRSSMB"`
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// phases cuts meshd's and this process's usage into phases.
type phases struct {
	pid        int
	last, self usage
}

// newPhases starts the first phase at began, when meshd was started (its
// CPU time counts from zero).
func newPhases(pid int, began time.Time) *phases {
	p := &phases{pid: pid}
	p.last = usage{At: began}
	p.self, _ = readUsage(os.Getpid())
	return p
}

func (p *phases) end(name string, peak int64) Phase {
	u, _ := readUsage(p.pid)
	s, _ := readUsage(os.Getpid())
	ph := Phase{Name: name, Seconds: u.At.Sub(p.last.At).Seconds(), MeshdCPU: (u.CPU - p.last.CPU).Seconds(),
		BenchCPU: (s.CPU - p.self.CPU).Seconds(), RSSMB: mb(u.RSS), PeakMB: mb(max(peak, u.RSS))}
	p.last, p.self = u, s
	return ph
}

func newResult(c config) *Result {
	r := &Result{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), MeshdEnv: c.env,
		Meshd: meshdRevision(c.meshdBin)}
	r.Scale.Services, r.Scale.Endpoints, r.Scale.Proxies, r.Scale.Namespaces = c.services, c.endpoints, c.proxies, c.namespaces
	r.Scale.Labels, r.Scale.StreamsPerConn, r.Scale.Multiplexed = c.labels, c.perConn, c.multiplexed
	return r
}

// finish fills in the memory summary from the phases and meshd's VmHWM.
func (r *Result) finish(ph *phases) {
	u, _ := readUsage(ph.pid)
	for _, p := range r.Phases {
		switch {
		case strings.HasPrefix(p.Name, "startup"):
			r.Memory.IdleMB = p.RSSMB
		case strings.HasPrefix(p.Name, "steady"):
			r.Memory.SteadyMB = p.RSSMB
		}
		r.Memory.PeakMB = max(r.Memory.PeakMB, p.PeakMB)
	}
	r.Memory.PeakMB = max(r.Memory.PeakMB, mb(u.HWM))
	r.Memory.FinalMB = mb(u.RSS)
}

func meshdRevision(bin string) string {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "unknown"
	}
	// Built with -buildvcs=false: the working tree it was (most likely)
	// built from.
	gitDescribe := func() string {
		out, err := exec.Command("git", "describe", "--always", "--dirty").Output()
		if err != nil {
			return "unknown"
		}
		return strings.TrimSpace(string(out))
	}
	var rev, dirty string
	for _, s := range info.Settings {
		switch {
		case s.Key == "vcs.revision":
			rev = s.Value[:min(len(s.Value), 12)]
		case s.Key == "vcs.modified" && s.Value == "true":
			dirty = "+dirty"
		}
	}
	if rev == "" {
		return gitDescribe()
	}
	return rev + dirty
}

func machine() map[string]string {
	m := map[string]string{"cpus": fmt.Sprint(runtime.NumCPU()), "go": runtime.Version(), "os": runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m["kernel"] = strings.TrimSpace(string(b))
	}
	for file, key := range map[string]string{"/proc/cpuinfo": "model name", "/proc/meminfo": "MemTotal"} {
		f, err := os.Open(file)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == key {
				m[strings.ReplaceAll(strings.ToLower(key), " ", "")] = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	return m
}

// write saves name.json and name.md under dir and prints the table.
func (r *Result) write(dir, name string) error { return writeReport(dir, name, r, r.markdown()) }

// writeReport saves v as name.json and md as name.md under dir, and prints
// md.
func writeReport(dir, name string, v any, md string) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), data, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".md"), []byte(md), 0o644); err != nil {
		return err
	}
	fmt.Print(md)
	fmt.Printf("\nwritten: %s.{json,md}\n", filepath.Join(dir, name))
	return nil
}

func (r *Result) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	scopes := "one scope per workload (LABELS app=svc-N)"
	if !r.Scale.Labels {
		scopes = "one scope per namespace (no LABELS)"
	}
	proto := "state of the world"
	if r.Scale.Delta || r.Scale.Protocol == protoDelta {
		proto = "delta"
	}
	scen, canary := "", "canary weight: API write → proxy ACKs new routes"
	if r.Scale.Scoped {
		scen = ", every namespace with a Sidecar (./*, istio-system/*)"
		canary = "scoped VirtualService change: API write → ACK by the proxies that see its host"
	}
	w("### meshd: %d services, %d endpoints, %d proxies (%d namespaces), %s%s, run %d", r.Scale.Services, r.Scale.Endpoints,
		r.Scale.Proxies, r.Scale.Namespaces, proto, scen, max(r.Run, 1))
	w("")
	w("%s; meshd %s; %s xDS, %d stream(s) per connection; %s CPUs (%s), %s; meshd env: %s", r.Date, r.Meshd, proto,
		r.Scale.StreamsPerConn, r.Machine["cpus"], r.Machine["modelname"], scopes, envOrDefault(r.MeshdEnv))
	w("")
	deb := r.debounce()
	w("| measure | p50 | p99 | max | target | other |")
	w("|---|---|---|---|---|---|")
	s := r.Storm
	w("| connect storm: proxy fully configured | %s | %s | %s | max ≤ 10 s | %d/%d configured, %d streams opened, %s per proxy |",
		ms(s.Latency.P50Ms), ms(s.Latency.P99Ms), ms(s.Latency.MaxMs), s.Configured, s.Proxies, s.Streams, kb(sum(s.BytesPerProxy)))
	c := r.Churn
	w("| endpoint churn: API write → proxy ACKs new assignment | %s | %s | %s | %s | %d/%d watching proxy-rounds, %s per proxy per change, responses %s |",
		ms(c.Latency.P50Ms), ms(c.Latency.P99Ms), ms(c.Latency.MaxMs), "p99 ≤ "+ms(deb+100), c.Received, c.Watching, kbf(sumf(c.BytesPerProxy)), counts(c.Responses))
	v := r.Canary
	w("| %s | %s | %s | %s | %s | %d/%d affected proxy-rounds, proxies pushed per round %v, %s per proxy per change, responses %s |",
		canary, ms(v.Latency.P50Ms), ms(v.Latency.P99Ms), ms(v.Latency.MaxMs), "p99 ≤ "+ms(deb+500), v.Received, v.Watching, v.PushedProxies,
		kbf(sumf(v.BytesPerProxy)), counts(v.Responses))
	if rc := r.Reconnect; rc != nil {
		w("| reconnect to a restarted meshd, presenting what is held | | | | nothing resent | %d/%d proxies back after %.1f s, %d streams (%d refused); sent %s to %d proxies: responses %s, resources %s (%s at the version held); presented %s; restarted meshd ready in %.1f s, peak %.0f MB, %.2f CPU s |",
			rc.Reconnected, rc.Proxies, rc.Seconds, rc.Streams, rc.Refused, kb(rc.bytesTotal()), rc.PushedProxies,
			counts(rc.Responses), counts(rc.Resources), counts(rc.Unchanged), counts(rc.Presented), rc.MeshdReadySeconds, rc.PeakMB, rc.CPUSeconds)
	}
	w("")
	w("meshd's last push per round (/debug/push_status): endpoint churn %s; canary %s.", pushes(c.Pushes), pushes(v.Pushes))
	w("")
	w("Per round, ms from the API write: meshd's push began → ended; first, half, last watching proxy ACKed. "+
		"Endpoint churn %s; canary %s.", timeline(c.Timeline), timeline(v.Timeline))
	w("")
	w("| meshd memory (target: < 400 MB) | RSS |")
	w("|---|---|")
	w("| after start-up (mesh loaded, no proxy) | %.0f MB |", r.Memory.IdleMB)
	w("| steady (all proxies connected, idle) | %.0f MB |", r.Memory.SteadyMB)
	w("| peak (VmHWM) | %.0f MB |", r.Memory.PeakMB)
	if r.Memory.GoRuntime != "" {
		w("| Go runtime, proxies connected, after a GC | %s |", r.Memory.GoRuntime)
	}
	w("")
	w("| phase | seconds | meshd CPU s | loadgen CPU s | meshd peak RSS |")
	w("|---|---|---|---|---|")
	for _, p := range r.Phases {
		w("| %s | %.1f | %.2f | %.2f | %.0f MB |", p.Name, p.Seconds, p.MeshdCPU, p.BenchCPU, p.PeakMB)
	}
	return b.String()
}

// debounce is meshd's PILOT_DEBOUNCE_AFTER in ms (default 100ms).
func (r *Result) debounce() float64 {
	for _, e := range r.MeshdEnv {
		if v, ok := strings.CutPrefix(e, "PILOT_DEBOUNCE_AFTER="); ok {
			if d, err := time.ParseDuration(v); err == nil {
				return float64(d.Milliseconds())
			}
		}
	}
	return 100
}

func pushes(ps []PushStatus) string {
	var parts []string
	for _, p := range ps {
		kind := "full"
		if p.EndpointsOnly {
			kind = "endpoints only"
		}
		parts = append(parts, fmt.Sprintf("%s, %d scopes built, %d changed, %s",
			kind, p.ScopesBuilt, p.ScopesChanged, ms(float64(p.DurationNanos)/1e6)))
	}
	return strings.Join(parts, "; ")
}

func timeline(ts []RoundTimeline) string {
	var parts []string
	for _, t := range ts {
		parts = append(parts, fmt.Sprintf("%.0f → %.0f; %.0f, %.0f, %.0f", t.PushStartMs, t.PushEndMs, t.FirstAckMs, t.HalfAckMs, t.LastAckMs))
	}
	return strings.Join(parts, " | ")
}

func envOrDefault(env []string) string {
	if len(env) == 0 {
		return "defaults"
	}
	return strings.Join(env, " ")
}

func ms(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.1f s", v/1000)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func kb(n int) string { return kbf(float64(n)) }

func kbf(n float64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MB", n/(1<<20))
	}
	return fmt.Sprintf("%.1f KB", n/1024)
}

func sum(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}

func sumf(m map[string]float64) float64 {
	t := 0.0
	for _, v := range m {
		t += v
	}
	return t
}

// counts renders responses per type, e.g. "eds 3000".
func counts(m map[string]int) string {
	var parts []string
	for _, t := range []string{"cds", "eds", "lds", "rds"} {
		if m[t] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", t, m[t]))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}
