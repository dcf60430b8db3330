package inject

import (
	"bytes"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
)

// patchOp is one RFC 6902 operation.
type patchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// createPatch returns the JSONPatch turning before into after. Injection
// changes only the pod's labels, annotations, init containers, containers
// and volumes, so each changed one is set whole with "add" (which replaces
// an existing member): a short patch the API server applies exactly.
func createPatch(before, after *corev1.Pod) ([]byte, error) {
	fields := []struct {
		path       string
		old, value any
	}{
		{"/metadata/labels", before.Labels, after.Labels},
		{"/metadata/annotations", before.Annotations, after.Annotations},
		{"/spec/initContainers", before.Spec.InitContainers, after.Spec.InitContainers},
		{"/spec/containers", before.Spec.Containers, after.Spec.Containers},
		{"/spec/volumes", before.Spec.Volumes, after.Spec.Volumes},
	}
	ops := []patchOp{}
	for _, f := range fields {
		o, err := json.Marshal(f.old)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", f.path, err)
		}
		v, err := json.Marshal(f.value)
		if err != nil {
			return nil, fmt.Errorf("encoding %s: %w", f.path, err)
		}
		if !bytes.Equal(o, v) {
			ops = append(ops, patchOp{Op: "add", Path: f.path, Value: v})
		}
	}
	if len(ops) == 0 {
		return nil, nil
	}
	return json.Marshal(ops)
}
