package inject

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	meshconfig "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/")

// Files of a golden case: inputs, and exactly one of the outputs.
const (
	podFile       = "pod.yaml"
	namespaceFile = "namespace.yaml"
	settingsFile  = "settings.yaml"
	injectedFile  = "injected.yaml"
	skippedFile   = "skipped.txt"
	rejectedFile  = "rejected.txt"
)

// testSettings is settings.yaml: Settings' fields over testBase, and the
// mesh config as YAML.
type testSettings struct {
	Settings `json:",inline"`
	Mesh     json.RawMessage `json:"mesh,omitempty"`
}

func testBase() Settings {
	s := DefaultSettings("docker.io/istio/proxyv2:1.29.6")
	s.MeshdImage = "ghcr.io/meshd/meshd:test"
	return s
}

func loadCase(t *testing.T, dir string) (Input, Settings) {
	t.Helper()
	var pod corev1.Pod
	b, err := os.ReadFile(filepath.Join(dir, podFile))
	require.NoError(t, err)
	require.NoError(t, yaml.UnmarshalStrict(b, &pod))
	in := Input{Pod: &pod} // the webhook's case: the selectors chose the pod
	// With namespace.yaml the namespace's labels are checked too.
	if b, err := os.ReadFile(filepath.Join(dir, namespaceFile)); err == nil {
		var ns corev1.Namespace
		require.NoError(t, yaml.UnmarshalStrict(b, &ns))
		in.NamespaceLabels = ns.Labels
		if in.NamespaceLabels == nil {
			in.NamespaceLabels = map[string]string{}
		}
	}
	s := testBase()
	if b, err := os.ReadFile(filepath.Join(dir, settingsFile)); err == nil {
		ts := testSettings{Settings: s}
		js, err := yaml.YAMLToJSON(b)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(js, &ts))
		s = ts.Settings
		if len(ts.Mesh) > 0 {
			s.Mesh = &meshconfig.MeshConfig{}
			require.NoError(t, protojson.Unmarshal(ts.Mesh, s.Mesh))
		}
	}
	return in, s
}

// applyPatch applies Inject's JSONPatch ("add" of top-level members of
// metadata and spec) to pod's JSON.
func applyPatch(t *testing.T, pod *corev1.Pod, patch []byte) *corev1.Pod {
	t.Helper()
	raw, err := json.Marshal(pod)
	require.NoError(t, err)
	var top map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(raw, &top))
	doc := map[string]map[string]json.RawMessage{}
	for _, k := range []string{"metadata", "spec"} {
		m := map[string]json.RawMessage{}
		require.NoError(t, json.Unmarshal(top[k], &m))
		doc[k] = m
	}
	var ops []patchOp
	require.NoError(t, json.Unmarshal(patch, &ops))
	for _, op := range ops {
		require.Equal(t, "add", op.Op)
		section, field, err := splitPath(op.Path)
		require.NoError(t, err, op.Path)
		if doc[section] == nil {
			doc[section] = map[string]json.RawMessage{}
		}
		doc[section][field] = op.Value
	}
	for k, m := range doc {
		top[k], err = json.Marshal(m)
		require.NoError(t, err)
	}
	raw, err = json.Marshal(top)
	require.NoError(t, err)
	var out corev1.Pod
	require.NoError(t, json.Unmarshal(raw, &out))
	return &out
}

// splitPath splits "/section/field".
func splitPath(path string) (section, field string, err error) {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	if len(segs) != 2 {
		return "", "", errors.New("want /section/field")
	}
	return segs[0], segs[1], nil
}

func TestGolden(t *testing.T) {
	dirs, err := os.ReadDir("testdata")
	require.NoError(t, err)
	for _, d := range dirs {
		if !d.IsDir() {
			t.Errorf("testdata/%s: only case directories belong in testdata", d.Name())
			continue
		}
		dir := filepath.Join("testdata", d.Name())
		t.Run(d.Name(), func(t *testing.T) { runCase(t, dir) })
	}
}

func runCase(t *testing.T, dir string) {
	in, s := loadCase(t, dir)
	res, err := Inject(in, s)
	var out string
	var got []byte
	var rej Rejection
	switch {
	case errors.As(err, &rej):
		out, got = rejectedFile, []byte(rej.Error()+"\n")
	case err != nil:
		t.Fatalf("internal error: %v", err)
	case !res.Injected:
		out, got = skippedFile, []byte(res.Reason+"\n")
		assert.Nil(t, res.Patch, "a skipped pod is not patched")
	default:
		out = injectedFile
		got, err = yaml.Marshal(res.Pod)
		require.NoError(t, err)
		checkInjected(t, in, s, res)
	}
	checkOrphans(t, dir, out)
	golden := filepath.Join(dir, out)
	if *update {
		require.NoError(t, os.WriteFile(golden, got, 0o644))
		return
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "missing golden %s (run with -update)", golden)
	assert.Equal(t, string(want), string(got), "%s differs (run with -update if intended)", golden)
}

// checkInjected checks the patch gives the pod, the pod passes the API's
// shape, and injecting it again changes nothing.
func checkInjected(t *testing.T, in Input, s Settings, res Result) {
	patched := applyPatch(t, in.Pod, res.Patch)
	want, _ := json.Marshal(res.Pod)
	got, _ := json.Marshal(patched)
	assert.JSONEq(t, string(want), string(got), "the patch must turn the pod into the injected pod")
	again, err := Inject(Input{Pod: res.Pod, NamespaceLabels: in.NamespaceLabels}, s)
	require.NoError(t, err)
	assert.False(t, again.Injected)
	assert.Nil(t, again.Patch, "a pod injected twice is unchanged")
	twice, err := Inject(in, s)
	require.NoError(t, err)
	assert.Equal(t, string(res.Patch), string(twice.Patch), "Inject is deterministic")
}

// checkOrphans fails on files of dir that are neither inputs nor out.
func checkOrphans(t *testing.T, dir, out string) {
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		switch e.Name() {
		case podFile, namespaceFile, settingsFile, out:
		default:
			if *update && (e.Name() == injectedFile || e.Name() == skippedFile || e.Name() == rejectedFile) {
				require.NoError(t, os.Remove(filepath.Join(dir, e.Name())))
				continue
			}
			t.Errorf("%s/%s is orphaned: this case produces %s", dir, e.Name(), out)
		}
	}
}
