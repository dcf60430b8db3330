package translate_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	"github.com/meshd/meshd/discovery/file"
	"github.com/meshd/meshd/discovery/meshcfg"
	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// goldenTypes are the files every case directory holds besides in.yaml.
var goldenTypes = []string{"listeners.yaml", "routes.yaml", "clusters.yaml", "endpoints.yaml"}

// TestGolden translates testdata/<case>/in.yaml for the scope named on its
// first line ("# scope: sidecar|envoy|shop", or a gateway's
// "# scope: router|envoy|istio-system|istio=ingress-public"), with the
// options of an optional "# options:" second line (readScope), and
// compares every xDS type with its golden file. An optional mesh.yaml holds the case's MeshConfig (as in
// the istio ConfigMap's "mesh" key). errors.yaml holds the translator's and providers' config
// errors when there are any. Unknown files in a case directory fail the test.
func TestGolden(t *testing.T) {
	cases, err := os.ReadDir("testdata")
	require.NoError(t, err)
	for _, required := range []string{"grpc-client", "multi-port", "plain-service", "weighted-subsets"} {
		require.DirExists(t, filepath.Join("testdata", required))
	}
	for _, c := range cases {
		if !c.IsDir() {
			t.Errorf("testdata/%s: not a case directory", c.Name())
			continue
		}
		dir := filepath.Join("testdata", c.Name())
		t.Run(c.Name(), func(t *testing.T) { runGolden(t, dir) })
	}
}

func runGolden(t *testing.T, dir string) {
	in := filepath.Join(dir, "in.yaml")
	scope, opts := readScope(t, in)
	snap := loadSnapshot(t, in)
	x := translate.NewIndex(snap, opts)
	out := translate.Build(x, scope)
	// Validate is also Envoy's checks that ValidateAll lacks (each domain
	// once per route configuration, in any case; the router last).
	require.NoError(t, translate.Validate(out), "generated config must pass ValidateAll and the integrity check")
	got := map[string][]byte{
		"listeners.yaml": render(t, out.Listeners),
		"routes.yaml":    render(t, out.Routes),
		"clusters.yaml":  render(t, out.Clusters),
		"endpoints.yaml": render(t, out.Endpoints),
	}
	if len(out.Secrets) > 0 {
		got["secrets.yaml"] = renderSecrets(t, out.Secrets)
	}
	errs := append(snap.Errors(), x.Errors()...)
	if len(errs) > 0 {
		b, err := yaml.Marshal(errs)
		require.NoError(t, err)
		got["errors.yaml"] = b
	}
	checkFiles(t, dir, got)
	for name, b := range got {
		path := filepath.Join(dir, name)
		if *update {
			require.NoError(t, os.WriteFile(path, b, 0o644))
			continue
		}
		want, err := os.ReadFile(path)
		require.NoError(t, err, "missing golden file; run make golden-update")
		require.Equal(t, string(want), string(b), "%s differs; run make golden-update and review the diff", path)
	}
}

// checkFiles fails on files in dir that are neither in.yaml nor a golden of
// this run (orphaned goldens), unless -update, which deletes them.
func checkFiles(t *testing.T, dir string, got map[string][]byte) {
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.Name() == "in.yaml" || e.Name() == "mesh.yaml" || e.Name() == "jwks.yaml" || got[e.Name()] != nil {
			continue
		}
		if *update {
			require.NoError(t, os.Remove(filepath.Join(dir, e.Name())))
			continue
		}
		t.Errorf("%s: orphaned golden file (not produced by this case)", filepath.Join(dir, e.Name()))
	}
}

// readScope reads the scope on in.yaml's first line and the translation
// options an optional second line names ("# options: filterGatewayClusters
// scopeGatewayToNamespace"; Options' fields, lower camel case).
func readScope(t *testing.T, path string) (model.Scope, translate.Options) {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	require.True(t, sc.Scan(), "%s is empty", path)
	line := strings.TrimSpace(sc.Text())
	require.True(t, strings.HasPrefix(line, "# scope:"), "%s: first line must be '# scope: type|generator|namespace'", path)
	scope, err := model.ParseScopeKey(strings.TrimSpace(strings.TrimPrefix(line, "# scope:")))
	require.NoError(t, err)
	var opts translate.Options
	if sc.Scan() {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "# options:"); ok {
			for _, o := range strings.Fields(rest) {
				switch o {
				case "filterGatewayClusters":
					opts.FilterGatewayClusters = true
				case "scopeGatewayToNamespace":
					opts.ScopeGatewayToNamespace = true
				default:
					require.Failf(t, "unknown option", "%s: option %q (want filterGatewayClusters or scopeGatewayToNamespace)", path, o)
				}
			}
		}
	}
	return scope, opts
}

// loadSnapshot reads in.yaml through the real file provider.
func loadSnapshot(t *testing.T, in string) *model.Snapshot { return loadStore(t, in).Current() }

// loadStore reads in.yaml (and mesh.yaml beside it) into a new Store.
func loadStore(t *testing.T, in string) *model.Store {
	b, err := os.ReadFile(in)
	require.NoError(t, err)
	tmp := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(tmp, "in.yaml"), b, 0o644))
	store := model.NewStore()
	p := &file.Provider{Dir: tmp, Store: store}
	require.NoError(t, p.Load())
	mesh, err := os.ReadFile(filepath.Join(filepath.Dir(in), "mesh.yaml"))
	if err == nil {
		cfg, _, err := meshcfg.Parse(mesh)
		require.NoError(t, err)
		store.Apply([]model.Change{meshcfg.Change(cfg, "mesh.yaml")})
	} else {
		require.ErrorIs(t, err, os.ErrNotExist)
	}
	loadJWKS(t, store, filepath.Join(filepath.Dir(in), "jwks.yaml"))
	return store
}

// loadJWKS applies the key sets of an optional jwks.yaml, as meshd's JWKS
// resolver would have fetched them for a jwksUri: a list of {uri, keys, err}.
func loadJWKS(t *testing.T, store *model.Store, path string) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	require.NoError(t, err)
	var sets []struct{ URI, Keys, Err string }
	require.NoError(t, yaml.Unmarshal(b, &sets))
	for _, s := range sets {
		j := &model.JWKS{URI: s.URI, Keys: s.Keys, Err: s.Err}
		if s.Keys != "" {
			j.Fetched = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		store.Apply([]model.Change{{Kind: model.KindJWKS, Name: model.JWKSName(s.URI, ""), Object: j}})
	}
}

// render turns resources into stable YAML: protojson, then re-encoded so
// that key order and whitespace are canonical.
func render[M proto.Message](t *testing.T, items []M) []byte {
	list := make([]json.RawMessage, 0, len(items))
	for _, m := range items {
		b, err := protojson.Marshal(m)
		require.NoError(t, err)
		list = append(list, b)
	}
	j, err := json.Marshal(list)
	require.NoError(t, err)
	y, err := yaml.JSONToYAML(j)
	require.NoError(t, err)
	return y
}

// renderSecrets lists the secrets a scope is sent: each one's name and
// kind, and the SHA-256 of its certificate, key, CA and CRL, so a golden
// shows which Secret's content went where without holding keys.
func renderSecrets(t *testing.T, secrets []*tlsv3.Secret) []byte {
	digest := func(d *core.DataSource) string {
		if d == nil {
			return ""
		}
		sum := sha256.Sum256(d.GetInlineBytes())
		return hex.EncodeToString(sum[:8])
	}
	var out []map[string]string
	for _, s := range secrets {
		e := map[string]string{"name": s.GetName()}
		switch {
		case s.GetTlsCertificate() != nil:
			e["type"] = "tls_certificate"
			e["certificateChain"] = digest(s.GetTlsCertificate().GetCertificateChain())
			e["privateKey"] = digest(s.GetTlsCertificate().GetPrivateKey())
		case s.GetValidationContext() != nil:
			e["type"] = "validation_context"
			e["trustedCa"] = digest(s.GetValidationContext().GetTrustedCa())
			if c := s.GetValidationContext().GetCrl(); c != nil {
				e["crl"] = digest(c)
			}
		}
		out = append(out, e)
	}
	b, err := yaml.Marshal(out)
	require.NoError(t, err)
	return b
}
