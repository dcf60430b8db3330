// Package meshgen generates the benchmark mesh as Kubernetes/Istio YAML and
// loads it into a model.Snapshot through the real file provider, for the
// Go benchmarks of translate and xds. Its shape is hack/bench's: service
// svc-i in namespace bench-(i mod N) with one HTTP port 8080, its
// endpoints in one EndpointSlice, and for every tenth service a
// VirtualService (90/10 split with the next service) and a DestinationRule
// (connection pool, outlier detection).
package meshgen

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/meshd/meshd/discovery/file"
	"github.com/meshd/meshd/internal/model"
)

// Mesh is the size of a generated mesh.
type Mesh struct {
	Services, Endpoints, Namespaces int
}

// Namespace is service i's namespace.
func (m Mesh) Namespace(i int) string { return fmt.Sprintf("bench-%d", i%m.Namespaces) }

// Host is service i's FQDN.
func (m Mesh) Host(i int) string {
	return fmt.Sprintf("svc-%d.%s.svc.cluster.local", i, m.Namespace(i))
}

// YAML renders the mesh as multi-document YAML.
func (m Mesh) YAML() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	for n := range m.Namespaces {
		w("apiVersion: v1\nkind: Namespace\nmetadata: {name: bench-%d}\n---", n)
	}
	addr := 0
	for i := range m.Services {
		ns := m.Namespace(i)
		w("apiVersion: v1\nkind: Service\nmetadata: {name: svc-%d, namespace: %s}", i, ns)
		w("spec:\n  clusterIP: 10.96.%d.%d\n  selector: {app: svc-%d}\n  ports: [{name: http, port: 8080}]\n---", i/250, i%250+1, i)
		w("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\naddressType: IPv4")
		w("metadata: {name: svc-%d-1, namespace: %s, labels: {kubernetes.io/service-name: svc-%d}}", i, ns, i)
		w("ports: [{name: http, port: 8080}]\nendpoints:")
		n := m.Endpoints / m.Services
		if i < m.Endpoints%m.Services {
			n++
		}
		for range n {
			addr++
			w("- addresses: [10.%d.%d.%d]\n  conditions: {ready: true}", 251+addr>>16, (addr>>8)&0xff, addr&0xff)
		}
		w("---")
		if i%10 != 0 {
			continue
		}
		next := (i + 1) % m.Services
		w("apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: svc-%d, namespace: %s}", i, ns)
		w("spec:\n  hosts: [%s]\n  http:\n  - route:", m.Host(i))
		w("    - {destination: {host: %s, port: {number: 8080}}, weight: 90}", m.Host(i))
		w("    - {destination: {host: %s, port: {number: 8080}}, weight: 10}\n---", m.Host(next))
		w("apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: svc-%d, namespace: %s}", i, ns)
		w("spec:\n  host: %s\n  trafficPolicy:", m.Host(i))
		w("    connectionPool: {tcp: {maxConnections: 100}, http: {http2MaxRequests: 1000, maxRequestsPerConnection: 10}}")
		w("    outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}\n---")
	}
	return b.String()
}

// Snapshot loads the mesh through the file provider into a new Store and
// returns its Snapshot.
func (m Mesh) Snapshot() (*model.Snapshot, error) {
	store, err := m.Store()
	if err != nil {
		return nil, err
	}
	return store.Current(), nil
}

// Store loads the mesh through the file provider into a new Store.
func (m Mesh) Store() (*model.Store, error) {
	dir, err := os.MkdirTemp("", "meshgen")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "mesh.yaml"), []byte(m.YAML()), 0o644); err != nil {
		return nil, err
	}
	store := model.NewStore()
	p := &file.Provider{Dir: dir, Store: store}
	if err := p.Load(); err != nil {
		return nil, err
	}
	snap := store.Current()
	if errs := snap.Errors(); len(errs) > 0 {
		return nil, fmt.Errorf("generated mesh has errors: %v", errs[0])
	}
	if got := snap.Count(model.KindService); got != m.Services {
		return nil, fmt.Errorf("generated mesh: %d services loaded, want %d", got, m.Services)
	}
	return store, nil
}

// Scope is the scope of a sidecar of service i's workload (labels
// app=svc-i), or of its namespace only when labels is false.
func (m Mesh) Scope(i int, labels bool) model.Scope {
	s := model.Scope{Type: model.SidecarProxy, Namespace: m.Namespace(i)}
	if labels {
		s.Labels = model.CanonicalLabels(map[string]string{"app": fmt.Sprintf("svc-%d", i)})
	}
	return s
}
