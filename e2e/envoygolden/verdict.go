package envoygolden

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/meshd/meshd/e2e/harness"
)

// settle is how long Check keeps watching after Envoy rejected something,
// so that every rejection of the case is in the verdict. warmWait is how
// long it waits, once Envoy shows every resource, for warming clusters and
// listeners to become active (a rejected secret keeps them warming).
const (
	settle   = 2 * time.Second
	warmWait = 5 * time.Second
)

// Verdict is what Envoy made of a plan.
type Verdict struct {
	// Problems are why the case fails, with Envoy's own messages: rejection
	// counters, NACKs, the log lines explaining them, listeners in
	// error_state, and resources /config_dump does not show. Empty when
	// Envoy took every resource.
	Problems []string
	// Notes do not fail the case: resources still warming, deprecated
	// fields Envoy warned about.
	Notes []string
	// Took is how long Envoy took to settle.
	Took time.Duration
}

// Check waits until Envoy shows every resource of p in /config_dump and has
// finished warming them (or warmWait more has passed), or has rejected
// something and settled, or within has passed, and judges.
func Check(t testing.TB, e *harness.Envoy, srv *Server, p *Plan, within time.Duration) Verdict {
	t.Helper()
	start := time.Now()
	var rejectedAt, presentAt time.Time
	var st observed
	var missing []string
	for {
		if e.Exited() {
			return Verdict{Problems: []string{"envoy exited:\n" + e.Logs()}, Took: time.Since(start)}
		}
		st = observe(t, e)
		missing = st.missing(p)
		bad := len(st.rejected) > 0 || len(st.listenerErrors) > 0 || len(srv.NACKs()) > 0
		if len(missing) == 0 && st.cdsLDSDone && !bad {
			if presentAt.IsZero() {
				presentAt = time.Now()
			}
			if len(st.warmingNotes()) == 0 || time.Since(presentAt) > warmWait {
				break
			}
		}
		if bad && rejectedAt.IsZero() {
			rejectedAt = time.Now()
		}
		if bad && time.Since(rejectedAt) > settle {
			break
		}
		if time.Since(start) > within {
			missing = append([]string{fmt.Sprintf("(gave up after %s; CDS and LDS taken: %v)", within, st.cdsLDSDone)}, missing...)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	v := Verdict{Took: time.Since(start), Notes: st.warmingNotes()}
	v.Problems = append(v.Problems, st.rejectedProblems()...)
	v.Problems = append(v.Problems, srv.NACKs()...)
	v.Problems = append(v.Problems, st.listenerErrors...)
	if l := logLines(e.Logs(), "initial fetch timed out"); l != "" {
		v.Problems = append(v.Problems, "Envoy asked for a resource the case does not have:\n"+l)
	}
	if len(v.Problems) > 0 {
		v.Problems = append(v.Problems, "envoy log:\n"+logLines(e.Logs(), "gRPC config for", "rejected", "error"))
	}
	if len(missing) > 0 {
		v.Problems = append(v.Problems, "not in Envoy's /config_dump (rejected or ignored): "+strings.Join(missing, "; "))
	}
	for _, d := range deprecated(e.Logs()) {
		v.Notes = append(v.Notes, "Envoy warned: deprecated field "+d)
	}
	return v
}

// observed is Envoy's state: its non-zero update_rejected (and
// listener_create_failure) counters and what /config_dump shows.
type observed struct {
	rejected       map[string]uint64
	listeners      map[string]string // name -> "active" | "warming"
	clusters       map[string]string // name -> "active" | "warming"
	routes         map[string]bool
	endpoints      map[string]bool
	listenerErrors []string
	// cdsLDSDone: Envoy has taken a CDS and an LDS response (so an empty
	// plan is not judged before Envoy heard from the server).
	cdsLDSDone bool
}

func observe(t testing.TB, e *harness.Envoy) observed {
	t.Helper()
	st := parseDump(t, e.ConfigDump(t))
	st.rejected = map[string]uint64{}
	stats := e.Stats(t)
	st.cdsLDSDone = stats["cluster_manager.cds.update_success"] > 0 && stats["listener_manager.lds.update_success"] > 0
	for name, v := range stats {
		// listener_create_failure: a listener LDS took but could not start
		// (e.g. its address cannot be bound).
		if v != 0 && (strings.HasSuffix(name, ".update_rejected") || name == "listener_manager.listener_create_failure") {
			st.rejected[name] = v
		}
	}
	return st
}

// missing lists the plan's resources Envoy does not show, by kind.
func (st observed) missing(p *Plan) []string {
	var out []string
	add := func(kind string, names []string, has func(string) bool) {
		var m []string
		for _, n := range names {
			if !has(n) {
				m = append(m, n)
			}
		}
		if len(m) > 0 {
			out = append(out, kind+": "+strings.Join(m, ", "))
		}
	}
	names := p.Names()
	add("listeners", names["listeners"], func(n string) bool { return st.listeners[n] != "" })
	add("clusters", names["clusters"], func(n string) bool { return st.clusters[n] != "" })
	add("route configs", names["routes"], func(n string) bool { return st.routes[n] })
	add("endpoints", names["endpoints"], func(n string) bool { return st.endpoints[n] })
	return out
}

func (st observed) rejectedProblems() []string {
	var out []string
	for n, v := range st.rejected {
		out = append(out, fmt.Sprintf("%s=%d", n, v))
	}
	sort.Strings(out)
	return out
}

func (st observed) warmingNotes() []string {
	var out []string
	for kind, m := range map[string]map[string]string{"listener": st.listeners, "cluster": st.clusters} {
		for n, s := range m {
			if s == "warming" {
				out = append(out, fmt.Sprintf("%s %s is still warming", kind, n))
			}
		}
	}
	sort.Strings(out)
	return out
}

// parseDump reads the parts of /config_dump the verdict needs. It decodes
// plain JSON: the dump holds types this test need not know.
func parseDump(t testing.TB, js string) observed {
	t.Helper()
	var dump struct {
		Configs []struct {
			DynamicListeners []struct {
				Name       string          `json:"name"`
				Active     json.RawMessage `json:"active_state"`
				Warming    json.RawMessage `json:"warming_state"`
				ErrorState *struct {
					Details string `json:"details"`
					Failed  struct {
						Name string `json:"name"`
					} `json:"failed_configuration"`
				} `json:"error_state"`
			} `json:"dynamic_listeners"`
			ActiveClusters  []struct{ Cluster struct{ Name string } } `json:"dynamic_active_clusters"`
			WarmingClusters []struct{ Cluster struct{ Name string } } `json:"dynamic_warming_clusters"`
			RouteConfigs    []struct {
				RouteConfig struct{ Name string } `json:"route_config"`
			} `json:"dynamic_route_configs"`
			EndpointConfigs []struct {
				EndpointConfig struct {
					ClusterName string `json:"cluster_name"`
				} `json:"endpoint_config"`
			} `json:"dynamic_endpoint_configs"`
		} `json:"configs"`
	}
	if err := json.Unmarshal([]byte(js), &dump); err != nil {
		t.Fatalf("envoy /config_dump: %v", err)
	}
	st := observed{listeners: map[string]string{}, clusters: map[string]string{}, routes: map[string]bool{}, endpoints: map[string]bool{}}
	for _, c := range dump.Configs {
		for _, l := range c.DynamicListeners {
			switch {
			case l.Active != nil:
				st.listeners[l.Name] = "active"
			case l.Warming != nil:
				st.listeners[l.Name] = "warming"
			}
			if l.ErrorState != nil {
				// Envoy 1.40 may list a failed listener twice, once without its name.
				msg := fmt.Sprintf("listener %s in error_state: %s", l.ErrorState.Failed.Name, strings.TrimSpace(l.ErrorState.Details))
				if !slices.Contains(st.listenerErrors, msg) {
					st.listenerErrors = append(st.listenerErrors, msg)
				}
			}
		}
		for _, x := range c.ActiveClusters {
			st.clusters[x.Cluster.Name] = "active"
		}
		for _, x := range c.WarmingClusters {
			if st.clusters[x.Cluster.Name] == "" {
				st.clusters[x.Cluster.Name] = "warming"
			}
		}
		for _, r := range c.RouteConfigs {
			st.routes[r.RouteConfig.Name] = true
		}
		for _, x := range c.EndpointConfigs {
			st.endpoints[x.EndpointConfig.ClusterName] = true
		}
	}
	return st
}

// logLines returns the distinct lines of Envoy's log that contain any of
// words, without their timestamp and thread prefix, each with a count.
func logLines(logs string, words ...string) string {
	count := map[string]int{}
	var order []string
	for _, l := range strings.Split(logs, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				// "[date time][thread][level][logger] [file:line] message"
				if i := strings.Index(l, "] ["); i >= 0 && strings.HasPrefix(l, "[") {
					if j := strings.Index(l[i+3:], "] "); j >= 0 {
						l = l[i+3+j+2:]
					}
				}
				if count[l] == 0 {
					order = append(order, l)
				}
				count[l]++
				break
			}
		}
	}
	for i, l := range order {
		if count[l] > 1 {
			order[i] = fmt.Sprintf("%s (x%d)", l, count[l])
		}
	}
	return strings.Join(order, "\n")
}

// deprecated returns the deprecated fields Envoy warned about, once each.
func deprecated(logs string) []string {
	const marker = "Using deprecated option '"
	seen := map[string]bool{}
	var out []string
	for _, l := range strings.Split(logs, "\n") {
		i := strings.Index(l, marker)
		if i < 0 {
			continue
		}
		f, _, _ := strings.Cut(l[i+len(marker):], "'")
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}
