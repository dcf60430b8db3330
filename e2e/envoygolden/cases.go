package envoygolden

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/meshd/meshd/internal/model"
)

// GoldenFiles are the files of a translate/testdata case this suite loads.
var GoldenFiles = []string{"in.yaml", "listeners.yaml", "routes.yaml", "clusters.yaml", "endpoints.yaml"}

// Case is one golden case parsed back into the protos translate emitted.
type Case struct {
	// Name is the case directory's name.
	Name string
	// Scope is the scope on in.yaml's first line ("# scope: ...").
	Scope     model.Scope
	Listeners []*listener.Listener
	Routes    []*route.RouteConfiguration
	Clusters  []*cluster.Cluster
	Endpoints []*endpoint.ClusterLoadAssignment
}

// CaseDirs returns every case directory under testdata, sorted, and an error
// for anything there that is not a directory.
func CaseDirs(testdata string) ([]string, error) {
	entries, err := os.ReadDir(testdata)
	if err != nil {
		return nil, fmt.Errorf("listing golden cases: %w", err)
	}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() {
			return nil, fmt.Errorf("%s: not a case directory", filepath.Join(testdata, e.Name()))
		}
		dirs = append(dirs, filepath.Join(testdata, e.Name()))
	}
	sort.Strings(dirs)
	return dirs, nil
}

// LoadCase reads a case directory. Every file of GoldenFiles must be there.
func LoadCase(dir string) (*Case, error) {
	for _, f := range GoldenFiles {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			return nil, fmt.Errorf("case %s lacks %s: %w", filepath.Base(dir), f, err)
		}
	}
	c := &Case{Name: filepath.Base(dir)}
	var err error
	if c.Scope, err = readScope(filepath.Join(dir, "in.yaml")); err != nil {
		return nil, err
	}
	if c.Listeners, err = readList(filepath.Join(dir, "listeners.yaml"), func() *listener.Listener { return &listener.Listener{} }); err != nil {
		return nil, err
	}
	if c.Routes, err = readList(filepath.Join(dir, "routes.yaml"), func() *route.RouteConfiguration { return &route.RouteConfiguration{} }); err != nil {
		return nil, err
	}
	if c.Clusters, err = readList(filepath.Join(dir, "clusters.yaml"), func() *cluster.Cluster { return &cluster.Cluster{} }); err != nil {
		return nil, err
	}
	if c.Endpoints, err = readList(filepath.Join(dir, "endpoints.yaml"), func() *endpoint.ClusterLoadAssignment { return &endpoint.ClusterLoadAssignment{} }); err != nil {
		return nil, err
	}
	return c, nil
}

// readScope parses in.yaml's first line, "# scope: type|generator|namespace[|labels]".
func readScope(path string) (model.Scope, error) {
	f, err := os.Open(path)
	if err != nil {
		return model.Scope{}, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return model.Scope{}, fmt.Errorf("%s is empty", path)
	}
	line := strings.TrimSpace(sc.Text())
	if !strings.HasPrefix(line, "# scope:") {
		return model.Scope{}, fmt.Errorf("%s: first line must be '# scope: type|generator|namespace'", path)
	}
	s, err := model.ParseScopeKey(strings.TrimSpace(strings.TrimPrefix(line, "# scope:")))
	if err != nil {
		return model.Scope{}, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// readList parses a golden file, a YAML list of protojson objects, strictly:
// an unknown field fails, as it would have to be a field Envoy lacks.
func readList[M proto.Message](path string, newM func() M) ([]M, error) {
	y, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var raw []json.RawMessage
	if err := json.Unmarshal(j, &raw); err != nil {
		return nil, fmt.Errorf("%s: want a list: %w", path, err)
	}
	opts := protojson.UnmarshalOptions{DiscardUnknown: false}
	out := make([]M, 0, len(raw))
	for i, r := range raw {
		m := newM()
		if err := opts.Unmarshal(r, m); err != nil {
			return nil, fmt.Errorf("%s: item %d: %w", path, i, err)
		}
		out = append(out, m)
	}
	return out, nil
}
