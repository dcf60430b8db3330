package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

const crdPath = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

// IstioCRDFile returns the path of istio.io/api's CRD bundle, located with
// `go list -m` in the repository root (the module cache; no network).
func IstioCRDFile() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "istio.io/api")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating istio.io/api: %v: %s", err, stderr.String())
	}
	return filepath.Join(strings.TrimSpace(string(out)), "kubernetes", "customresourcedefinitions.gen.yaml"), nil
}

// InstallCRDs creates every CustomResourceDefinition in file (default: see
// Options.CRDFile) and waits until all are Established. It returns how many
// it installed; ones that already exist are left as they are.
func (e *Env) InstallCRDs(ctx context.Context, file string) (int, error) {
	if file == "" {
		var err error
		if file, err = IstioCRDFile(); err != nil {
			return 0, err
		}
	}
	docs, err := readCRDs(file)
	if err != nil {
		return 0, err
	}
	var names []string
	for _, doc := range docs {
		if err := e.Do(ctx, http.MethodPost, crdPath, doc.json, nil); err != nil && !IsStatus(err, http.StatusConflict) {
			return 0, fmt.Errorf("creating CRD %s: %w", doc.name, err)
		}
		names = append(names, doc.name)
	}
	for _, name := range names {
		if err := e.waitEstablished(ctx, name); err != nil {
			return 0, err
		}
	}
	return len(names), nil
}

// crdDoc is one CRD from a YAML bundle, converted to JSON.
type crdDoc struct {
	name string
	json []byte
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// readCRDs splits a multi-document YAML file into CRDs, skipping empty
// documents and anything that is not a CustomResourceDefinition.
func readCRDs(file string) ([]crdDoc, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading CRDs: %w", err)
	}
	var docs []crdDoc
	for i, part := range docSeparator.Split(string(data), -1) {
		j, err := yaml.YAMLToJSON([]byte(part))
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", file, i, err)
		}
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(j, &head); err != nil || head.Kind != "CustomResourceDefinition" {
			continue // empty document ("null") or another kind
		}
		docs = append(docs, crdDoc{name: head.Metadata.Name, json: j})
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no CustomResourceDefinitions", file)
	}
	return docs, nil
}

// waitEstablished polls a CRD until its Established condition is True.
func (e *Env) waitEstablished(ctx context.Context, name string) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		var crd struct {
			Status struct {
				Conditions []struct{ Type, Status string } `json:"conditions"`
			} `json:"status"`
		}
		err := e.Do(ctx, http.MethodGet, crdPath+"/"+name, nil, &crd)
		for _, c := range crd.Status.Conditions {
			if c.Type == "Established" && c.Status == "True" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for CRD %s to be established: %w (last error: %v)", name, ctx.Err(), err)
		case <-tick.C:
		}
	}
}
