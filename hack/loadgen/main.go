// Command loadgen acts as many Envoy sidecars at once against any ADS
// server: istiod-style node IDs and NAMESPACE/LABELS metadata spread over
// namespaces, wildcard CDS and LDS then the EDS and RDS names they
// reference, an ACK (or NACK) for every response. It reports how long the
// proxies took to get their full config and what they received, per type.
//
//	go run ./hack/loadgen --address localhost:15010 --proxies 1000 --namespaces shop,bank
//
// See README.md (Performance) and hack/bench, which drives it in scenarios.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/meshd/meshd/hack/loadgen/fleet"
	"github.com/meshd/meshd/internal/xdsclient"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

// proxyReport is one proxy's line of the JSON report.
type proxyReport struct {
	NodeID       string          `json:"nodeID"`
	ConfiguredMs float64         `json:"configuredMs,omitempty"`
	Attempts     int             `json:"attempts"`
	LastError    string          `json:"lastError,omitempty"`
	Bytes        map[string]int  `json:"bytes"`
	Responses    map[string]int  `json:"responses"`
	Arrivals     []fleet.Arrival `json:"arrivals,omitempty"`
}

func run() error {
	addr := flag.String("address", "localhost:15010", "ADS server (plaintext host:port)")
	proxies := flag.Int("proxies", 100, "number of simulated proxies")
	namespaces := flag.String("namespaces", "default", "comma-separated namespaces the proxies are spread over (round robin)")
	labels := flag.String("labels", "", `LABELS of proxy i as key=value pairs; "%d" in a value is replaced by i mod --label-mod (e.g. "app=svc-%d")`)
	labelMod := flag.Int("label-mod", 1, "modulus for %d in --labels")
	perConn := flag.Int("streams-per-conn", 100, "ADS streams sharing one gRPC connection")
	delta := flag.Bool("delta", false, "use the delta (incremental) protocol")
	rate := flag.Float64("rate", 0, "proxies started per second (0: all at once)")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up waiting for full config after this long")
	hold := flag.Duration("hold", 0, "stay connected this long after all are configured (0: exit; <0: until interrupted)")
	jsonOut := flag.String("json", "", "write a per-proxy JSON report here")
	arrivals := flag.Bool("arrivals", false, "include every response in the JSON report")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := fleet.Options{Address: *addr, Proxies: *proxies, Namespaces: strings.Split(*namespaces, ","),
		StreamsPerConn: *perConn, Delta: *delta, Rate: *rate}
	if *labels != "" {
		tmpl, err := parseLabels(*labels)
		if err != nil {
			return err
		}
		opts.Labels = func(i int) map[string]string { return expand(tmpl, i%max(*labelMod, 1)) }
	}
	f, err := fleet.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer f.Close()
	wctx, cancel := context.WithTimeout(ctx, *timeout)
	err = f.WaitConfigured(wctx)
	cancel()
	summarise(os.Stdout, f)
	if err != nil {
		if *jsonOut != "" {
			_ = writeJSON(*jsonOut, f, *arrivals)
		}
		return err
	}
	switch {
	case *hold < 0:
		<-ctx.Done()
	case *hold > 0:
		select {
		case <-time.After(*hold):
		case <-ctx.Done():
		}
	}
	if *jsonOut != "" {
		return writeJSON(*jsonOut, f, *arrivals)
	}
	return nil
}

func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--labels: %q is not key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func expand(tmpl map[string]string, n int) map[string]string {
	out := make(map[string]string, len(tmpl))
	for k, v := range tmpl {
		out[k] = strings.ReplaceAll(v, "%d", fmt.Sprint(n))
	}
	return out
}

// summarise prints configuration times and what was received per type.
func summarise(w *os.File, f *fleet.Fleet) {
	var times []time.Duration
	bytes, responses, nacks, attempts := map[string]int{}, map[string]int{}, 0, 0
	for _, p := range f.Proxies() {
		if d, ok := p.ConfiguredAfter(); ok {
			times = append(times, d)
		}
		attempts += p.Attempts()
		for _, a := range p.Arrivals(0) {
			bytes[a.Type] += a.Bytes
			responses[a.Type]++
			if a.Nack {
				nacks++
			}
		}
	}
	q := fleet.Quantiles(times)
	fmt.Fprintf(w, "configured %d/%d proxies: p50 %v p99 %v max %v; %d streams opened, %d NACKs\n",
		len(times), len(f.Proxies()), q.P50.Round(time.Millisecond), q.P99.Round(time.Millisecond), q.Max.Round(time.Millisecond), attempts, nacks)
	for _, t := range xdsclient.Types {
		fmt.Fprintf(w, "  %s: %d responses, %d bytes (%d per proxy)\n", t, responses[t], bytes[t], bytes[t]/len(f.Proxies()))
	}
}

func writeJSON(path string, f *fleet.Fleet, withArrivals bool) error {
	var out []proxyReport
	for _, p := range f.Proxies() {
		arr := p.Arrivals(0)
		b, r := fleet.Totals(arr)
		pr := proxyReport{NodeID: p.NodeID, Attempts: p.Attempts(), Bytes: b, Responses: r}
		if d, ok := p.ConfiguredAfter(); ok {
			pr.ConfiguredMs = float64(d.Microseconds()) / 1000
		}
		if _, err := p.Failures(); err != nil {
			pr.LastError = err.Error()
		}
		if withArrivals {
			pr.Arrivals = arr
		}
		out = append(out, pr)
	}
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}
