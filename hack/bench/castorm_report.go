package main

import (
	"flag"
	"fmt"
	"sort"
	"strings"
	"time"
)

// caResult is everything one --ca-storm run measured; it is written as
// JSON and markdown.
type caResult struct {
	Date    string            `json:"date"`
	Machine map[string]string `json:"machine"`
	Meshd   string            `json:"meshd"`
	// Calls are spread over Namespaces namespaces (one service account
	// and token each) and sent over Conns TLS connections; Key is the
	// CSRs' key type.
	Calls      int      `json:"calls"`
	Namespaces int      `json:"namespaces"`
	Conns      int      `json:"conns"`
	Key        string   `json:"key"`
	MeshdEnv   []string `json:"meshdEnv,omitempty"`
	Runs       []caRun  `json:"runs"`
	Profile    string   `json:"profile,omitempty"`
}

// caRun is one storm: every call fired at once.
type caRun struct {
	Name        string  `json:"name"`
	Calls       int     `json:"calls"`
	WallSeconds float64 `json:"wallSeconds"`
	// Latency is from the storm's start to each call's answer.
	Latency      Latency        `json:"latency"`
	Errors       int            `json:"errors"`
	ErrorsByCode map[string]int `json:"errorsByCode,omitempty"`
	// Verified counts the chains that verified against the published root
	// for their caller's SPIFFE ID and CSR key; Issued is meshd's
	// citadel_server_success_cert_issuance_count over the storm.
	Verified int `json:"verified"`
	Issued   int `json:"issued"`
	// TokenReviews is the API server's count of TokenReviews created over
	// the storm (apiserver_request_total).
	TokenReviews int `json:"tokenReviews"`
	// CPU seconds over the storm, of meshd, the API server, etcd and the
	// bench itself (the callers), which share the machine's cores.
	MeshdCPU     float64 `json:"meshdCPUSeconds"`
	APIServerCPU float64 `json:"apiserverCPUSeconds"`
	EtcdCPU      float64 `json:"etcdCPUSeconds"`
	BenchCPU     float64 `json:"benchCPUSeconds"`
	// MeshdPeakMB is meshd's peak RSS over the storm (sampled every 50 ms);
	// MeshdBeforeMB and MeshdRSSMB its RSS before and at the end.
	MeshdPeakMB   float64 `json:"meshdPeakRSSMB"`
	MeshdBeforeMB float64 `json:"meshdRSSBeforeMB"`
	MeshdRSSMB    float64 `json:"meshdRSSEndMB"`
}

func newCAResult(c config, o caStormOpts) *caResult {
	return &caResult{Date: time.Now().UTC().Format(time.RFC3339), Machine: machine(), Meshd: meshdRevision(c.meshdBin),
		Calls: o.n, Namespaces: o.namespaces, Conns: o.conns, Key: o.key, MeshdEnv: c.env}
}

// caName is the results' file name: --name if given, else castorm-<N>-<key>.
func caName(c config, o caStormOpts) string {
	named := false
	flag.Visit(func(f *flag.Flag) { named = named || f.Name == "name" })
	if named {
		return c.name
	}
	return fmt.Sprintf("castorm-%d-%s", o.n, o.key)
}

// fill sets the run's resource figures from the snapshots around it.
func (r *caRun) fill(before, after snapshot, peak int64) {
	cpu := func(a, b usage) float64 { return (b.CPU - a.CPU).Seconds() }
	r.MeshdCPU, r.APIServerCPU = cpu(before.meshd, after.meshd), cpu(before.api, after.api)
	r.EtcdCPU, r.BenchCPU = cpu(before.etcd, after.etcd), cpu(before.self, after.self)
	r.TokenReviews, r.Issued = int(after.reviews-before.reviews), int(after.issued-before.issued)
	r.MeshdPeakMB, r.MeshdRSSMB = mb(max(peak, after.meshd.RSS)), mb(after.meshd.RSS)
	r.MeshdBeforeMB = mb(before.meshd.RSS)
}

// write saves name.json and name.md under dir and prints the table.
func (r *caResult) write(dir, name string) error { return writeReport(dir, name, r, r.markdown()) }

// markdown is the result as a table, one column per run.
func (r *caResult) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	keys := map[string]string{"rsa": "RSA 2048", "ec": "P-256"}
	w("### meshd CA storm: %d CreateCertificate calls at once (%d namespaces, %s CSRs, %d TLS connections)",
		r.Calls, r.Namespaces, keys[r.Key], r.Conns)
	w("")
	w("%s, meshd %s, %s CPUs (%s), %s, meshd env: %s", r.Date, r.Meshd, r.Machine["cpus"], r.Machine["modelname"],
		r.Machine["go"], envOrDefault(r.MeshdEnv))
	w("")
	header, sep := "| |", "|---|"
	for _, run := range r.Runs {
		header += " " + run.Name + " |"
		sep += "---|"
	}
	w("%s", header)
	w("%s", sep)
	row := func(label string, f func(caRun) string) {
		line := "| " + label + " |"
		for _, run := range r.Runs {
			line += " " + f(run) + " |"
		}
		w("%s", line)
	}
	row("all answered after", func(x caRun) string { return fmt.Sprintf("%.2f s", x.WallSeconds) })
	row("latency p50 / p90 / p99 / max", func(x caRun) string {
		return fmt.Sprintf("%s / %s / %s / %s", ms(x.Latency.P50Ms), ms(x.Latency.P90Ms), ms(x.Latency.P99Ms), ms(x.Latency.MaxMs))
	})
	row("errors", func(x caRun) string { return fmt.Sprintf("%d%s", x.Errors, errorList(x.ErrorsByCode)) })
	row("chains verified / issued (meshd's count)", func(x caRun) string { return fmt.Sprintf("%d / %d", x.Verified, x.Issued) })
	row("TokenReviews (API server's count)", func(x caRun) string { return fmt.Sprint(x.TokenReviews) })
	row("meshd CPU", func(x caRun) string {
		return fmt.Sprintf("%.2f s (%.2f ms per call)", x.MeshdCPU, 1000*x.MeshdCPU/float64(max(1, x.Calls)))
	})
	row("kube-apiserver / etcd CPU", func(x caRun) string { return fmt.Sprintf("%.2f / %.2f s", x.APIServerCPU, x.EtcdCPU) })
	row("callers' CPU (bench)", func(x caRun) string { return fmt.Sprintf("%.2f s", x.BenchCPU) })
	row("meshd RSS before / peak / end", func(x caRun) string {
		return fmt.Sprintf("%.0f / %.0f / %.0f MB", x.MeshdBeforeMB, x.MeshdPeakMB, x.MeshdRSSMB)
	})
	if r.Profile != "" {
		w("")
		w("meshd CPU profile of the last run: %s", r.Profile)
	}
	return b.String()
}

// errorList is " (code: n, ...)" for a non-empty map, sorted.
func errorList(m map[string]int) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for k, n := range m {
		parts = append(parts, fmt.Sprintf("%s: %d", k, n))
	}
	sort.Strings(parts)
	return " (" + strings.Join(parts, "; ") + ")"
}
