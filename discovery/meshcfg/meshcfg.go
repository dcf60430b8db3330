// Package meshcfg reads istiod's MeshConfig (istio.io/api mesh/v1alpha1) from
// YAML — the "mesh" key of the istio ConfigMap, or a --mesh-config file — so
// that a bank's existing mesh-wide settings carry over unchanged.
package meshcfg

import (
	"fmt"
	"os"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	meshconfig "istio.io/api/mesh/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/meshd/meshd/internal/model"
)

// Parse decodes mesh config YAML and fills istiod's defaults. Unknown fields
// are tolerated: the result is still returned, with a warning naming the
// first unknown field, for the caller to log once.
func Parse(data []byte) (cfg *meshconfig.MeshConfig, warning string, err error) {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return nil, "", fmt.Errorf("mesh config is not valid YAML: %w", err)
	}
	if strings.TrimSpace(string(j)) == "null" {
		return model.WithDefaults(nil), "", nil
	}
	m := &meshconfig.MeshConfig{}
	if strictErr := protojson.Unmarshal(j, m); strictErr != nil {
		if !strings.Contains(strictErr.Error(), "unknown field") {
			return nil, "", fmt.Errorf("mesh config: %w", strictErr)
		}
		m = &meshconfig.MeshConfig{}
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(j, m); err != nil {
			return nil, "", fmt.Errorf("mesh config: %w", err)
		}
		warning = fmt.Sprintf("mesh config: ignoring what meshd does not know: %v", strictErr)
	}
	return model.WithDefaults(m), warning, nil
}

// ReadFile reads and parses a mesh config file.
func ReadFile(path string) (*meshconfig.MeshConfig, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("reading mesh config: %w", err)
	}
	cfg, warning, err := Parse(b)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return cfg, warning, nil
}

// Change returns the Store change that installs cfg.
func Change(cfg *meshconfig.MeshConfig, source string) model.Change {
	return model.Change{Kind: model.KindMeshConfig, Name: "mesh",
		Object: &model.MeshConfig{Spec: cfg, Source: source}}
}
