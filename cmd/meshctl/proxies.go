package main

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// typeStatus is meshd's per-type status of one proxy stream (xds.TypeStatus
// as /debug/syncz and /debug/adsz serve it).
type typeStatus struct {
	SentVersion   string    `json:"sentVersion"`
	SentNonce     string    `json:"sentNonce"`
	SentAt        time.Time `json:"sentAt"`
	SentResources int       `json:"sentResources"`
	Responses     int       `json:"responses"`
	AckedVersion  string    `json:"ackedVersion"`
	AckedNonce    string    `json:"ackedNonce"`
	AckedAt       time.Time `json:"ackedAt"`
	Nacks         int       `json:"nacks"`
	LastNack      string    `json:"lastNack"`
	// NackedNonce is the nonce of the last response NACKed, if meshd
	// reports it (it does not yet: see state).
	NackedNonce string `json:"nackedNonce"`
}

// syncEntry is one proxy stream in /debug/syncz.
type syncEntry struct {
	Proxy        string                `json:"proxy"`
	ProxyType    string                `json:"proxy_type"`
	IstioVersion string                `json:"istio_version"`
	ClusterID    string                `json:"cluster_id"`
	Types        map[string]typeStatus `json:"types"`
}

// adsClient is one proxy stream in /debug/adsz (xds.ProxyStatus).
type adsClient struct {
	Proxy       string                `json:"proxy"`
	ID          string                `json:"id"`
	Namespace   string                `json:"namespace"`
	Scope       string                `json:"scope"`
	Delta       bool                  `json:"delta"`
	Identity    string                `json:"identity"`
	ConnectedAt time.Time             `json:"connectedAt"`
	Types       map[string]typeStatus `json:"types"`
}

// proxyID returns the "pod.namespace" field of an istiod node ID
// (type~ip~id~domain), or the node ID itself if it has no such field.
func proxyID(nodeID string) string {
	if f := strings.Split(nodeID, "~"); len(f) == 4 {
		return f[2]
	}
	return nodeID
}

// matches reports whether the proxy named by the user (node ID or
// pod.namespace) is the stream with that node ID.
func matches(name, nodeID string) bool { return name == nodeID || name == proxyID(nodeID) }

// notFoundError is a proxy that is not connected to meshd, with the
// connected proxies whose names are closest to it.
type notFoundError struct {
	name, addr string
	close      []string
	connected  int
}

// Error names the proxy, the meshd asked and the close matches.
func (e *notFoundError) Error() string {
	msg := fmt.Sprintf("proxy %q is not connected to meshd at %s (%d proxy streams are)", e.name, e.addr, e.connected)
	if len(e.close) > 0 {
		msg += "; did you mean " + strings.Join(e.close, ", ") + "?"
	}
	return msg + "\n  A proxy is named by its node ID or pod.namespace; 'meshctl proxy-status' lists them."
}

// proxyNotFound returns the error for a proxy name that matched none of
// nodeIDs, suggesting up to five close matches.
func proxyNotFound(name, addr string, nodeIDs []string) error {
	type cand struct {
		id   string
		dist int
	}
	seen := map[string]bool{}
	var cands []cand
	for _, n := range nodeIDs {
		id := proxyID(n)
		if seen[id] {
			continue
		}
		seen[id] = true
		d := min(distance(name, id), distance(name, n))
		if strings.Contains(id, name) || strings.Contains(name, id) || samePod(name, id) {
			d = 0
		}
		if d <= max(2, len(name)/3) {
			cands = append(cands, cand{id, d})
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].dist != cands[j].dist {
			return cands[i].dist < cands[j].dist
		}
		return cands[i].id < cands[j].id
	})
	e := &notFoundError{name: name, addr: addr, connected: len(nodeIDs)}
	for i := 0; i < len(cands) && i < 5; i++ {
		e.close = append(e.close, cands[i].id)
	}
	return e
}

// samePod reports whether name (pod.namespace, or a pod alone) and the
// proxy id are of the same namespace and one's pod name starts with the
// other's: "frontend.shop" (a Deployment's name) is close to
// "frontend-v1-0.shop".
func samePod(name, id string) bool {
	pod, ns, _ := strings.Cut(name, ".")
	idPod, idNS, _ := strings.Cut(id, ".")
	if ns != "" && ns != idNS || pod == "" {
		return false
	}
	return strings.HasPrefix(idPod, pod) || strings.HasPrefix(pod, idPod)
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// connectedProxies returns the node IDs of the streams meshd serves.
func connectedProxies(c *client) ([]string, error) {
	var entries []syncEntry
	if err := c.getJSON("/debug/syncz", &entries); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(entries))
	for _, e := range entries {
		out = append(out, e.Proxy)
	}
	return out, nil
}
