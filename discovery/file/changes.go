package file

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/meshd/meshd/discovery/meshcfg"
	"github.com/meshd/meshd/internal/model"
)

// ChangeOptions say how DecodeChanges reads a change file.
type ChangeOptions struct {
	// Domain is the cluster DNS domain of Service hostnames (default
	// "cluster.local").
	Domain string
	// MeshNamespace and MeshConfigMap name the ConfigMap whose "mesh" key
	// holds the MeshConfig, as the Kubernetes provider reads it (default
	// istio-system/istio). A document without a namespace is taken to be in
	// MeshNamespace.
	MeshNamespace, MeshConfigMap string
	// Delete turns every document into the deletion of the object it
	// names, as `kubectl delete -f` does: only its identity is read.
	Delete bool
}

func (o ChangeOptions) withDefaults() ChangeOptions {
	if o.Domain == "" {
		o.Domain = "cluster.local"
	}
	if o.MeshNamespace == "" {
		o.MeshNamespace = "istio-system"
	}
	if o.MeshConfigMap == "" {
		o.MeshConfigMap = "istio"
	}
	return o
}

// DecodeChanges decodes a YAML file of one or more documents into the Store
// changes it would make if it were one file of the provider's directory:
// each document is decoded exactly as the provider decodes it (the same
// kinds, strictness and per-object errors, sources "name#N", the first of
// two documents defining one object wins). Besides, the mesh ConfigMap
// (ChangeOptions) is read as the Kubernetes provider reads it: its "mesh"
// key becomes a MeshConfig change. The changes are sorted by key; notes
// are warnings for the caller to show (unknown MeshConfig fields, a
// deletion that changes nothing).
func DecodeChanges(name string, data []byte, opts ChangeOptions) (changes []model.Change, notes []string) {
	opts = opts.withDefaults()
	var docs []docResult
	for i, d := range splitDocuments(data) {
		source := name + "#" + strconv.Itoa(i+1)
		res, ok, note := decodeChangeDoc(d, source, opts)
		if note != "" {
			notes = append(notes, note)
		}
		if ok {
			docs = append(docs, res)
		}
	}
	state := desiredState([]*fileEntry{{rel: name, docs: docs}})
	for _, key := range slices.Sorted(maps.Keys(state)) {
		changes = append(changes, state[key].change())
	}
	return changes, notes
}

// ChangeDecoder returns DecodeChanges with opts, deleting when del is set.
func ChangeDecoder(opts ChangeOptions) func(name string, data []byte, del bool) ([]model.Change, []string) {
	return func(name string, data []byte, del bool) ([]model.Change, []string) {
		o := opts
		o.Delete = del
		return DecodeChanges(name, data, o)
	}
}

// decodeChangeDoc decodes one document of a change file. ok is false for a
// document that changes nothing.
func decodeChangeDoc(d rawDoc, source string, opts ChangeOptions) (res docResult, ok bool, note string) {
	var h header
	if j, err := yaml.YAMLToJSON(d.data); err == nil && json.Unmarshal(j, &h) == nil && h.Kind == "ConfigMap" {
		return meshConfigDoc(d, source, &h, opts)
	}
	res, ok = decodeDoc(d.data, source, d.line, opts.Domain)
	if !opts.Delete || !ok || !res.identified {
		return res, ok, ""
	}
	if _, known := decoders[res.kind]; !known {
		return res, true, "" // the provider's "unsupported kind" error
	}
	// A deletion needs the object's identity only, as kubectl's does.
	res.obj, res.err = nil, nil
	return res, true, ""
}

// meshConfigDoc reads the mesh ConfigMap as the Kubernetes provider does
// (kube's meshChange): its "mesh" key parsed by meshcfg, a key that does not
// parse an error on the ConfigMap's data.mesh field. Any other ConfigMap is
// an error: meshd reads none.
func meshConfigDoc(d rawDoc, source string, h *header, opts ChangeOptions) (docResult, bool, string) {
	res := docResult{source: source, sum: sha256.Sum256(append([]byte(source+"\x00"), d.data...))}
	ns, name := h.Metadata.Namespace, h.Metadata.Name
	if ns == "" {
		ns = opts.MeshNamespace
	}
	res.identified, res.kind, res.namespace, res.name = true, "ConfigMap", ns, name
	fail := func(field, format string, args ...any) (docResult, bool, string) {
		res.err = &model.ObjectError{Kind: "ConfigMap", Namespace: ns, Name: name, Source: source,
			Field: field, Message: fmt.Sprintf(format, args...)}
		return res, true, ""
	}
	if h.APIVersion != "v1" {
		return fail("apiVersion", "apiVersion %q is not supported for ConfigMap (want v1)", h.APIVersion)
	}
	if ns != opts.MeshNamespace || name != opts.MeshConfigMap {
		return fail("metadata.name", "meshd reads no ConfigMap but the mesh config %s/%s (key \"mesh\")",
			opts.MeshNamespace, opts.MeshConfigMap)
	}
	if opts.Delete {
		return res, false, fmt.Sprintf("%s: deleting ConfigMap %s/%s changes nothing: meshd keeps the last mesh config until it is recreated",
			source, ns, name)
	}
	j, err := yaml.YAMLToJSONStrict(d.data)
	if err != nil {
		return fail("", "invalid YAML: %s", fileLines(err.Error(), d.line))
	}
	cm := &corev1.ConfigMap{}
	if err := strictJSON(j, cm); err != nil {
		e := res.objectError(err)
		return fail(e.Field, "%s", e.Message)
	}
	cfg, warning, err := meshcfg.Parse([]byte(cm.Data["mesh"]))
	// Stored as the kube provider stores it: the MeshConfig object, or an
	// error on it that names the ConfigMap.
	res.kind, res.namespace, res.name = model.KindMeshConfig, "", "mesh"
	if err != nil {
		res.err = &model.ObjectError{Kind: "ConfigMap", Namespace: ns, Name: name, Source: source,
			Field: "data.mesh", Message: err.Error()}
		return res, true, ""
	}
	if warning != "" {
		warning = source + ": " + warning
	}
	res.obj = &model.MeshConfig{Spec: cfg, Source: source}
	return res, true, warning
}
