package file

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/meshd/meshd/internal/model"
)

// docResult is what one YAML document decodes to: an object or an error.
type docResult struct {
	source string
	// sum identifies the document's content and source; equal sums mean an
	// unchanged document.
	sum [sha256.Size]byte
	// identified is set when kind, namespace and name are known; otherwise
	// the document is keyed by its source.
	identified      bool
	kind            model.Kind
	namespace, name string
	obj             any
	err             *model.ObjectError
}

// header is the part of a manifest read before its kind is known.
type header struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
}

// decodeDoc decodes one document. line is where the document starts in its
// file, used to turn YAML error line numbers into file line numbers. ok is
// false for a document that holds no object (such as "~").
func decodeDoc(raw []byte, source string, line int, domain string) (res docResult, ok bool) {
	res = docResult{source: source, sum: sha256.Sum256(append([]byte(source+"\x00"), raw...))}
	j, err := yaml.YAMLToJSON(raw)
	if err != nil {
		res.err = &model.ObjectError{Source: source, Message: "invalid YAML: " + fileLines(err.Error(), line)}
		return res, true
	}
	if string(j) == "null" {
		return res, false
	}
	var h header
	if err := json.Unmarshal(j, &h); err != nil {
		res.err = &model.ObjectError{Source: source, Message: "not a Kubernetes object: " + err.Error()}
		return res, true
	}
	if fe := identify(&res, &h); fe != nil {
		res.err = fe
		return res, true
	}
	if _, err := yaml.YAMLToJSONStrict(raw); err != nil {
		res.err = res.objectError(&decodeError{msg: fileLines(err.Error(), line)})
		return res, true
	}
	obj, err := decodeObject(&h, j, res.namespace, domain)
	if err != nil {
		res.err = res.objectError(err)
		return res, true
	}
	switch o := obj.(type) {
	case *model.Config:
		o.Source = source
	case *model.Secret:
		o.Source = source
	}
	res.obj = obj
	return res, true
}

// identify fills the document's kind, namespace and name, defaulting the
// namespace of namespaced kinds to "default".
func identify(res *docResult, h *header) *model.ObjectError {
	if h.Kind == "" {
		return &model.ObjectError{Source: res.source, Field: "kind", Message: "kind is required"}
	}
	if h.Metadata.Name == "" {
		return &model.ObjectError{Kind: model.Kind(h.Kind), Namespace: h.Metadata.Namespace,
			Source: res.source, Field: "metadata.name", Message: "name is required"}
	}
	res.identified = true
	res.kind, res.name, res.namespace = model.Kind(h.Kind), h.Metadata.Name, h.Metadata.Namespace
	switch {
	case res.kind == model.KindNamespace:
		res.namespace = ""
	case res.namespace == "":
		res.namespace = "default"
	}
	return nil
}

// objectError turns a decoding or conversion error into an ObjectError that
// names the document's object and source.
func (res *docResult) objectError(err error) *model.ObjectError {
	out := &model.ObjectError{Kind: res.kind, Namespace: res.namespace, Name: res.name, Source: res.source}
	var oe *model.ObjectError
	var de *decodeError
	switch {
	case errors.As(err, &oe):
		out.Field, out.Message = oe.Field, oe.Message
	case errors.As(err, &de):
		out.Field, out.Message = de.field, de.msg
	default:
		out.Message = err.Error()
	}
	return out
}

var (
	// yamlLine matches the line number in go-yaml's messages.
	yamlLine = regexp.MustCompile(`line (\d+)`)
	// yamlPrefix is the wrapping sigs.k8s.io/yaml adds to go-yaml's messages.
	yamlPrefix = regexp.MustCompile(`^error converting YAML to JSON: `)
)

// fileLines rewrites "line N" (relative to the document) into the line of
// the file, and drops sigs.k8s.io/yaml's wrapping prefix.
func fileLines(msg string, docLine int) string {
	msg = yamlPrefix.ReplaceAllString(msg, "")
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, ":\n  ", ": "), "\n  ", "; ")
	return yamlLine.ReplaceAllStringFunc(msg, func(s string) string {
		n, err := strconv.Atoi(s[len("line "):])
		if err != nil {
			return s
		}
		return fmt.Sprintf("line %d", n+docLine-1)
	})
}
