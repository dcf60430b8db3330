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
// long, from Envoy taking the case's clusters, it waits for every resource
// to arrive, clusters, listeners and secrets to finish warming and the
// server to go LIVE; what still warms then fails the case (a secret that
// never arrives keeps the clusters naming it warming, and Envoy asks for
// listeners only once its clusters have warmed). Golden cases settle in
// well under a second.
const (
	settle   = 2 * time.Second
	warmWait = 10 * time.Second
)

// Verdict is what Envoy made of a plan.
type Verdict struct {
	// Problems are why the case fails, with Envoy's own messages: rejection
	// and failure counters, NACKs, listeners in error_state, listeners,
	// clusters and secrets still warming after the wait, a server not LIVE,
	// resources /config_dump does not show, and the log lines explaining
	// them. Empty when Envoy took every resource and made it active.
	Problems []string
	// Notes do not fail the case: deprecated fields Envoy warned about.
	Notes []string
	// Took is how long Envoy took to settle.
	Took time.Duration
}

// Check waits until Envoy shows every resource of p in /config_dump, has
// finished warming them and is LIVE; or has rejected something and
// settled; or still warms something warmWait after taking the clusters; or
// within has passed. Then it judges.
func Check(t testing.TB, e *harness.Envoy, srv *Server, p *Plan, within time.Duration) Verdict {
	t.Helper()
	start := time.Now()
	var rejectedAt, cdsAt time.Time
	var st observed
	var missing []string
	for {
		if e.Exited() {
			return Verdict{Problems: []string{"envoy exited:\n" + e.Logs()}, Took: time.Since(start)}
		}
		st = observe(t, e)
		missing = st.missing(p)
		bad := len(st.rejected) > 0 || len(st.listenerErrors) > 0 || len(srv.NACKs()) > 0
		if st.cdsTaken && !bad {
			if cdsAt.IsZero() {
				cdsAt = time.Now()
			}
			warming := len(st.notReady()) > 0
			if len(missing) == 0 && st.ldsTaken && !warming || warming && time.Since(cdsAt) > warmWait {
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
			missing = append([]string{fmt.Sprintf("(gave up after %s)", within)}, missing...)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return judge(e, srv, st, missing, time.Since(start))
}

// judge turns what Check saw into a verdict.
func judge(e *harness.Envoy, srv *Server, st observed, missing []string, took time.Duration) Verdict {
	v := Verdict{Took: took}
	v.Problems = append(v.Problems, st.rejectedProblems()...)
	v.Problems = append(v.Problems, srv.NACKs()...)
	v.Problems = append(v.Problems, st.listenerErrors...)
	v.Problems = append(v.Problems, st.notReady()...)
	if l := logLines(e.Logs(), "initial fetch timed out"); l != "" {
		v.Problems = append(v.Problems, "Envoy asked for a resource the case does not have:\n"+l)
	}
	if len(missing) > 0 || !st.ldsTaken {
		v.Problems = append(v.Problems, st.missingProblem(missing))
	}
	if len(v.Problems) > 0 {
		l := logLines(e.Logs(), "gRPC config for", "rejected", "error", "warming", "timed out", "secret", "Secret", "sds")
		if l == "" {
			l = "(nothing about it at --log-level warn)"
		}
		v.Problems = append(v.Problems, "envoy log:\n"+l)
	}
	for _, d := range deprecated(e.Logs()) {
		v.Notes = append(v.Notes, "Envoy warned: deprecated field "+d)
	}
	return v
}

// observed is Envoy's state: its non-zero failure counters (failureCounter),
// server.state, and what /config_dump shows.
type observed struct {
	rejected       map[string]uint64
	serverState    uint64            // 0 LIVE, 1 DRAINING, 2 PRE_INITIALIZING, 3 INITIALIZING
	listeners      map[string]string // name -> "active" | "warming"
	clusters       map[string]string // name -> "active" | "warming"
	secrets        map[string]string // name -> "active" | "warming"
	routes         map[string]bool
	endpoints      map[string]bool
	listenerErrors []string
	// cdsTaken, ldsTaken: Envoy has taken a CDS, an LDS response (so an
	// empty plan is not judged before Envoy heard from the server).
	cdsTaken, ldsTaken bool
}

func observe(t testing.TB, e *harness.Envoy) observed {
	t.Helper()
	st := parseDump(t, e.ConfigDump(t))
	st.rejected = map[string]uint64{}
	stats := e.Stats(t)
	st.cdsTaken = stats["cluster_manager.cds.update_success"] > 0
	st.ldsTaken = stats["listener_manager.lds.update_success"] > 0
	state, ok := stats["server.state"]
	if !ok {
		t.Fatalf("envoy /stats has no server.state")
	}
	st.serverState = state
	for name, v := range stats {
		if v != 0 && failureCounter(name) {
			st.rejected[name] = v
		}
	}
	return st
}

// failureCounter reports whether a counter above zero fails the case:
// any xDS update_rejected (Envoy refused a resource: LDS, RDS, CDS, EDS,
// SDS) or init_fetch_timeout (Envoy asked for a resource and got no answer
// in time), listener_manager.listener_create_failure (a listener LDS took
// but could not start, e.g. its address cannot be bound), and an SDS
// secret's update_failure (sds.<secret>.update_failure: its fetch failed).
// A cluster's own update_failure is not one: a DNS cluster counts the
// failed lookups of a name that does not resolve here.
func failureCounter(name string) bool {
	return strings.HasSuffix(name, ".update_rejected") ||
		strings.HasSuffix(name, ".init_fetch_timeout") ||
		name == "listener_manager.listener_create_failure" ||
		strings.HasPrefix(name, "sds.") && strings.HasSuffix(name, ".update_failure")
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

// missingProblem says which of the plan's resources Envoy does not show,
// and why that may be.
func (st observed) missingProblem(missing []string) string {
	why := "rejected or ignored"
	switch {
	case !st.cdsTaken:
		why = "Envoy has taken no CDS response"
	case !st.ldsTaken:
		why = "Envoy has taken no LDS response: it asks for listeners only once every cluster has warmed"
	}
	return fmt.Sprintf("not in Envoy's /config_dump (%s): %s", why, strings.Join(missing, "; "))
}

func (st observed) rejectedProblems() []string {
	var out []string
	for n, v := range st.rejected {
		out = append(out, fmt.Sprintf("%s=%d", n, v))
	}
	sort.Strings(out)
	return out
}

// notReady lists what keeps Envoy from serving the case: listeners,
// clusters and secrets still warming (a secret that never arrived keeps
// the listeners and clusters that name it warming), and a server that is
// not LIVE.
func (st observed) notReady() []string {
	var out []string
	for kind, m := range map[string]map[string]string{"listener": st.listeners, "cluster": st.clusters, "secret": st.secrets} {
		for n, s := range m {
			if s == "warming" {
				out = append(out, fmt.Sprintf("%s %s is still warming", kind, n))
			}
		}
	}
	sort.Strings(out)
	if st.serverState != 0 {
		out = append(out, fmt.Sprintf("server.state=%d, not LIVE (0 LIVE, 1 DRAINING, 2 PRE_INITIALIZING, 3 INITIALIZING)", st.serverState))
	}
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
			ActiveSecrets   []struct{ Name string } `json:"dynamic_active_secrets"`
			WarmingSecrets  []struct{ Name string } `json:"dynamic_warming_secrets"`
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
	st := observed{listeners: map[string]string{}, clusters: map[string]string{}, secrets: map[string]string{},
		routes: map[string]bool{}, endpoints: map[string]bool{}}
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
		for _, x := range c.ActiveSecrets {
			st.secrets[x.Name] = "active"
		}
		for _, x := range c.WarmingSecrets {
			if st.secrets[x.Name] == "" {
				st.secrets[x.Name] = "warming"
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
