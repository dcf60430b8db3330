package envoygolden

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/internal/testcerts"
)

// pki is a test CA and a workload certificate it signed, in PEM.
type pki struct{ cert, key, ca []byte }

// pem returns the PEM a certificate role takes: "cert", "key" or "ca".
func (k *pki) pem(role string) []byte {
	switch role {
	case "cert":
		return k.cert
	case "key":
		return k.key
	default:
		return k.ca
	}
}

// testSecrets returns a secret for every SDS secret the resources name:
// a certificate and key where they name a tls_certificate, a CA where they
// name a validation context. Without them Envoy would keep such clusters and
// listeners warming; with them it loads them as a sidecar would.
func testSecrets(k *pki, resources []proto.Message) ([]*tlsv3.Secret, error) {
	roles := map[string]string{}
	for _, m := range resources {
		v, err := toJSON(m)
		if err != nil {
			return nil, err
		}
		collectSecretNames(v, roles)
	}
	var out []*tlsv3.Secret
	for _, n := range sortedKeys(roles) {
		s := &tlsv3.Secret{Name: n}
		switch roles[n] {
		case "cert":
			s.Type = &tlsv3.Secret_TlsCertificate{TlsCertificate: &tlsv3.TlsCertificate{
				CertificateChain: inline(k.cert), PrivateKey: inline(k.key)}}
		case "ca":
			s.Type = &tlsv3.Secret_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
				TrustedCa: inline(k.ca)}}
		default:
			return nil, fmt.Errorf("SDS secret %q is named both as a certificate and as a validation context", n)
		}
		out = append(out, s)
	}
	return out, nil
}

// collectSecretNames finds SdsSecretConfig names in a protojson tree.
func collectSecretNames(v any, roles map[string]string) {
	walk(v, func(key string, child any) {
		switch key {
		case "tlsCertificateSdsSecretConfigs":
			list, _ := child.([]any)
			for _, s := range list {
				if m, ok := s.(map[string]any); ok {
					mark(roles, m["name"], "cert")
				}
			}
		case "validationContextSdsSecretConfig":
			if m, ok := child.(map[string]any); ok {
				mark(roles, m["name"], "ca")
			}
		}
	})
}

// fileRoles maps the TLS fields that take a DataSource to the PEM they hold.
var fileRoles = map[string]string{"certificateChain": "cert", "privateKey": "key", "trustedCa": "ca"}

// rewriteFiles points the TLS DataSources that name a file (a
// DestinationRule's clientCertificate, privateKey, caCertificates: files
// mounted into the pod) at test PEM files in dir, written here. Envoy reads
// them when it loads the resource, and the pod's files do not exist on this
// machine: what is validated is the config around them, not the paths.
// It returns a note per rewritten path.
func rewriteFiles[M proto.Message](k *pki, dir string, items []M, seen map[string]string) ([]string, error) {
	var notes []string
	for i, m := range items {
		v, err := toJSON(m)
		if err != nil {
			return nil, err
		}
		changed := false
		var werr error
		walk(v, func(key string, child any) {
			role, ok := fileRoles[key]
			ds, isMap := child.(map[string]any)
			name, hasFile := ds["filename"].(string)
			if !ok || !isMap || !hasFile || werr != nil {
				return
			}
			if seen[name] == "" {
				seen[name] = filepath.Join(dir, strconv.Itoa(len(seen))+"-"+role+".pem")
				if werr = os.WriteFile(seen[name], k.pem(role), 0o600); werr != nil {
					return
				}
				notes = append(notes, fmt.Sprintf("TLS file %s (%s) does not exist here: Envoy reads a test %s PEM from %s instead", name, key, role, seen[name]))
			}
			ds["filename"] = seen[name]
			changed = true
		})
		if werr != nil {
			return nil, werr
		}
		if !changed {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		n := m.ProtoReflect().New().Interface().(M)
		if err := protojson.Unmarshal(b, n); err != nil {
			return nil, err
		}
		items[i] = n
	}
	return notes, nil
}

// walk calls fn for every key of every object in a JSON tree, then descends.
func walk(v any, fn func(key string, child any)) {
	switch v := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(v) {
			fn(k, v[k])
			walk(v[k], fn)
		}
	case []any:
		for _, c := range v {
			walk(c, fn)
		}
	}
}

func mark(roles map[string]string, name any, role string) {
	n, _ := name.(string)
	if n == "" {
		return
	}
	if old, ok := roles[n]; ok && old != role {
		role = "both"
	}
	roles[n] = role
}

func toJSON(m proto.Message) (any, error) {
	b, err := protojson.Marshal(m)
	if err != nil {
		return nil, err
	}
	var v any
	return v, json.Unmarshal(b, &v)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func inline(b []byte) *core.DataSource {
	return &core.DataSource{Specifier: &core.DataSource_InlineBytes{InlineBytes: b}}
}

// newPKI makes a self-signed CA and a workload certificate it signed, with
// the SPIFFE identity of the namespace's default service account.
func newPKI(ns string) *pki {
	ca := testcerts.NewCA("envoygolden test CA", testcerts.Options{})
	id := &url.URL{Scheme: "spiffe", Host: "cluster.local", Path: "/ns/" + ns + "/sa/default"}
	wl := testcerts.NewLeaf("default."+ns, ca, testcerts.Options{URIs: []*url.URL{id}})
	return &pki{cert: wl.CertPEM, key: wl.KeyPEM, ca: ca.CertPEM}
}
