package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// formatJSON returns a JSON document indented by two spaces (output
// "json") or converted to YAML (output "yaml", keys sorted, as istioctl's
// -o yaml).
func formatJSON(doc []byte, output string) ([]byte, error) {
	if output == "yaml" {
		return yaml.JSONToYAML(doc)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, doc, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// printProtos prints Envoy resources as istioctl's -o json (a JSON array,
// proto3 JSON names, indented by four spaces) or -o yaml.
func printProtos[M proto.Message](w io.Writer, msgs []M, output string) error {
	items := make([]json.RawMessage, 0, len(msgs))
	opts := protojson.MarshalOptions{Resolver: resolver}
	for _, m := range msgs {
		b, err := opts.Marshal(m)
		if err != nil {
			return fmt.Errorf("marshalling %s: %w", m.ProtoReflect().Descriptor().FullName(), err)
		}
		items = append(items, b)
	}
	return printJSONList(w, items, output)
}

// printJSONList prints items as one JSON array (four-space indent) or YAML.
func printJSONList(w io.Writer, items any, output string) error {
	doc, err := json.Marshal(items)
	if err != nil {
		return err
	}
	if output == "yaml" {
		out, err := yaml.JSONToYAML(doc)
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, doc, "", "    "); err != nil {
		return err
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}
