package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Summary is a whole benchmark: every run of every protocol and scenario
// on one scale, reported side by side as ranges over the runs.
type Summary struct {
	Date    string            `json:"date"`
	Machine map[string]string `json:"machine"`
	Meshd   string            `json:"meshd"`
	Scale   struct {
		Services, Endpoints, Proxies, Namespaces int
		Labels                                   bool
		StreamsPerConn                           int      `json:"streamsPerConn"`
		Multiplexed                              string   `json:"multiplexed,omitempty"`
		Protocols                                []string `json:"protocols"`
		Scenarios                                []string `json:"scenarios"`
		Runs                                     int      `json:"runs"`
		Rounds                                   int      `json:"rounds"`
	} `json:"scale"`
	MeshdEnv []string  `json:"meshdEnv,omitempty"`
	Runs     []*Result `json:"runs"`

	mu sync.Mutex
}

func newSummary(c config) *Summary {
	s := &Summary{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Meshd: meshdRevision(c.meshdBin),
		MeshdEnv: c.env}
	s.Scale.Services, s.Scale.Endpoints, s.Scale.Proxies, s.Scale.Namespaces = c.services, c.endpoints, c.proxies, c.namespaces
	s.Scale.Labels, s.Scale.StreamsPerConn, s.Scale.Multiplexed = c.labels, c.perConn, c.multiplexed
	s.Scale.Protocols, s.Scale.Scenarios, s.Scale.Runs, s.Scale.Rounds = c.protocols, c.scenarios, c.runs, c.rounds
	return s
}

func (s *Summary) add(r *Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.Runs = append(s.Runs, r)
}

// save writes name.{json,md} under dir (after every run, so that an
// interrupted benchmark keeps what it measured).
func (s *Summary) save(dir, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), data, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".md"), []byte(s.markdownLocked()), 0o644)
}

// write saves the files and prints the report.
func (s *Summary) write(dir, name string) error {
	if err := s.save(dir, name); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Print(s.markdownLocked())
	fmt.Printf("\nwritten: %s.{json,md}\n", filepath.Join(dir, name))
	return nil
}

// column is one protocol in one scenario: its runs.
type column struct {
	scenario, protocol string
	runs               []*Result
}

func (s *Summary) columns() []column {
	var out []column
	for _, scen := range s.Scale.Scenarios {
		for _, proto := range s.Scale.Protocols {
			col := column{scenario: scen, protocol: proto}
			for _, r := range s.Runs {
				if r.Scale.Protocol == proto && r.Scale.Scoped == (scen == scoped) {
					col.runs = append(col.runs, r)
				}
			}
			out = append(out, col)
		}
	}
	return out
}

func (c column) header() string {
	p := map[string]string{protoDelta: "delta", protoSotW: "state of the world"}[c.protocol]
	if c.scenario == scoped {
		return p + ", Sidecar-scoped"
	}
	return p
}

// spread renders the values' range, min–max ("—" if none), with format f.
func spread(vals []float64, f string) string {
	if len(vals) == 0 {
		return "—"
	}
	lo, hi := slices.Min(vals), slices.Max(vals)
	a, b := fmt.Sprintf(f, lo), fmt.Sprintf(f, hi)
	if a == b {
		return a
	}
	return a + "–" + b
}

// metric is one row of the side-by-side table: a value per run (ok false:
// none for this run), formatted with f.
type metric struct {
	label, target, f string
	value            func(*Result) (float64, bool)
}

func (m metric) cell(c column) string {
	var vals []float64
	for _, r := range c.runs {
		if v, ok := m.value(r); ok {
			vals = append(vals, v)
		}
	}
	return spread(vals, m.f)
}

func always(f func(*Result) float64) func(*Result) (float64, bool) {
	return func(r *Result) (float64, bool) { return f(r), true }
}

func onlyScoped(want bool, f func(*Result) float64) func(*Result) (float64, bool) {
	return func(r *Result) (float64, bool) { return f(r), r.Scale.Scoped == want }
}

func withReconnect(f func(*Reconnect) float64) func(*Result) (float64, bool) {
	return func(r *Result) (float64, bool) {
		if r.Reconnect == nil {
			return 0, false
		}
		return f(r.Reconnect), true
	}
}

// minInt and maxInt of a per-round count (0 if none).
func minInt(v []int) float64 {
	if len(v) == 0 {
		return 0
	}
	return float64(slices.Min(v))
}

func maxInt(v []int) float64 {
	if len(v) == 0 {
		return 0
	}
	return float64(slices.Max(v))
}

// seesHost is how many proxies, per round, the scoped change concerned.
func seesHost(r *Result) float64 {
	if r.Canary.Rounds == 0 {
		return 0
	}
	return float64(r.Canary.Watching) / float64(r.Canary.Rounds)
}

func (s *Summary) metrics() []metric {
	sec := func(v float64) float64 { return v / 1000 }
	big := s.Scale.Proxies > 2000
	rss := "≤ 300 MB"
	if big {
		rss = "≤ 600 MB"
	}
	return []metric{
		{"connect storm: configured after, p99 (s)", "", "%.2f", always(func(r *Result) float64 { return sec(r.Storm.Latency.P99Ms) })},
		{"connect storm: configured after, max (s)", "≤ 5 s", "%.2f", always(func(r *Result) float64 { return sec(r.Storm.Latency.MaxMs) })},
		{"connect storm: proxies configured", "", "%.0f", always(func(r *Result) float64 { return float64(r.Storm.Configured) })},
		{"connect storm: streams opened", "", "%.0f", always(func(r *Result) float64 { return float64(r.Storm.Streams) })},
		{"connect storm: received per proxy (KB)", "", "%.0f", always(func(r *Result) float64 { return float64(sum(r.Storm.BytesPerProxy)) / 1024 })},
		{"endpoint churn: API write → ACK, p99 (ms)", "≤ 100 ms", "%.0f", always(func(r *Result) float64 { return r.Churn.Latency.P99Ms })},
		{"endpoint churn: max (ms)", "", "%.0f", always(func(r *Result) float64 { return r.Churn.Latency.MaxMs })},
		{"canary: API write → ACK, p99 (ms)", "≤ 300 ms", "%.0f", onlyScoped(false, func(r *Result) float64 { return r.Canary.Latency.P99Ms })},
		{"canary: proxies pushed per round", "", "%.0f", onlyScoped(false, func(r *Result) float64 { return maxInt(r.Canary.PushedProxies) })},
		{"scoped VirtualService change: write → ACK p99 on the proxies that see it (ms)", "≤ 100 ms", "%.0f",
			onlyScoped(true, func(r *Result) float64 { return r.Canary.Latency.P99Ms })},
		{"scoped VirtualService change: proxies that see its host", "", "%.0f", onlyScoped(true, seesHost)},
		{"scoped VirtualService change: proxies pushed anything, per round (fewest)", "= those that see it", "%.0f",
			onlyScoped(true, func(r *Result) float64 { return minInt(r.Canary.PushedProxies) })},
		{"scoped VirtualService change: proxies pushed anything, per round (most)", "= those that see it", "%.0f",
			onlyScoped(true, func(r *Result) float64 { return maxInt(r.Canary.PushedProxies) })},
		{"meshd RSS: connected and idle (MB)", "", "%.0f", always(func(r *Result) float64 { return r.Memory.SteadyMB })},
		{"meshd RSS: peak (MB)", rss, "%.0f", always(func(r *Result) float64 { return r.Memory.PeakMB })},
		{"meshd CPU: connect storm (s)", "", "%.1f", always(func(r *Result) float64 { return phaseCPU(r, "connect storm") })},
		{"reconnect to a restarted meshd: bytes sent to all proxies (KB)", "≈ 0 beyond response heads", "%.1f",
			withReconnect(func(c *Reconnect) float64 { return float64(c.bytesTotal()) / 1024 })},
		{"reconnect: responses", "", "%.0f", withReconnect(func(c *Reconnect) float64 { return float64(sum(c.Responses)) })},
		{"reconnect: resources sent", "0", "%.0f", withReconnect(func(c *Reconnect) float64 { return float64(sum(c.Resources)) })},
		{"reconnect: of them at the version the proxy held", "", "%.0f", withReconnect(func(c *Reconnect) float64 { return float64(sum(c.Unchanged)) })},
		{"reconnect: resources the proxies presented", "", "%.0f", withReconnect(func(c *Reconnect) float64 { return float64(sum(c.Presented)) })},
		{"reconnect: proxies back", "", "%.0f", withReconnect(func(c *Reconnect) float64 { return float64(c.Reconnected) })},
		{"reconnect: proxies pushed anything", "0", "%.0f", withReconnect(func(c *Reconnect) float64 { return float64(c.PushedProxies) })},
		{"reconnect: streams refused and retried", "", "%.0f", withReconnect(func(c *Reconnect) float64 { return float64(c.Refused) })},
		{"reconnect: quiet after (s)", "", "%.1f", withReconnect(func(c *Reconnect) float64 { return c.Seconds })},
		{"reconnect: restarted meshd peak RSS (MB)", "", "%.0f", withReconnect(func(c *Reconnect) float64 { return c.PeakMB })},
	}
}

// phaseCPU is meshd's CPU seconds in the phase named name.
func phaseCPU(r *Result, name string) float64 {
	for _, p := range r.Phases {
		if p.Name == name {
			return p.MeshdCPU
		}
	}
	return 0
}

func (s *Summary) markdownLocked() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	scopes := "one scope per workload (LABELS app=svc-N)"
	if !s.Scale.Labels {
		scopes = "one scope per namespace (no LABELS)"
	}
	w("## meshd: %d services, %d endpoints, %d proxies (%d namespaces), %d run(s)", s.Scale.Services, s.Scale.Endpoints,
		s.Scale.Proxies, s.Scale.Namespaces, s.Scale.Runs)
	w("")
	w("%s; meshd %s; %s CPUs (%s), %s; %s; meshd env: %s; %d change rounds per phase.", s.Date, s.Meshd, s.Machine["cpus"],
		s.Machine["modelname"], s.Machine["memtotal"], scopes, envOrDefault(s.MeshdEnv), s.Scale.Rounds)
	w("")
	w("%s", multiplexing(s.Scale.Proxies, s.Scale.StreamsPerConn, s.Scale.Multiplexed))
	w("")
	cols := s.columns()
	if s.Scale.Runs > 1 {
		w("Ranges are min–max over the runs; each run is a fresh meshd on the same mesh, protocols one after the other.")
		w("")
	}
	head, sep := "| measure | target |", "|---|---|"
	for _, c := range cols {
		head += fmt.Sprintf(" %s (%d runs) |", c.header(), len(c.runs))
		sep += "---|"
	}
	w("%s", head)
	w("%s", sep)
	for _, m := range s.metrics() {
		line := fmt.Sprintf("| %s | %s |", m.label, m.target)
		empty := true
		for _, c := range cols {
			cell := m.cell(c)
			empty = empty && cell == "—"
			line += " " + cell + " |"
		}
		if !empty {
			w("%s", line)
		}
	}
	w("")
	w("Reconnection, per type (resources sent / bytes / responses, summed over the proxies; first run of each column):")
	w("")
	for _, c := range cols {
		if len(c.runs) == 0 || c.runs[0].Reconnect == nil {
			continue
		}
		rc := c.runs[0].Reconnect
		var parts []string
		for _, t := range []string{"cds", "eds", "lds", "rds"} {
			parts = append(parts, fmt.Sprintf("%s %d / %s / %d (presented %d)", t, rc.Resources[t], kb(rc.Bytes[t]),
				rc.Responses[t], rc.Presented[t]))
		}
		w("- %s: %s.", c.header(), strings.Join(parts, "; "))
	}
	w("")
	w("### Runs")
	for _, c := range cols {
		for _, r := range c.runs {
			w("")
			b.WriteString(r.markdown())
		}
	}
	return b.String()
}

// multiplexing states how the load generator's streams used connections.
func multiplexing(proxies, perConn int, why string) string {
	conns := (proxies + max(perConn, 1) - 1) / max(perConn, 1)
	switch {
	case why != "":
		return fmt.Sprintf("**Streams multiplexed**: %s.", why)
	case perConn > 1:
		return fmt.Sprintf("**Streams multiplexed**: %d ADS streams per gRPC connection (--streams-per-conn), %d connections for %d proxies.",
			perConn, conns, proxies)
	}
	return fmt.Sprintf("One gRPC connection per proxy (as Envoy): %d connections, no multiplexing.", conns)
}
