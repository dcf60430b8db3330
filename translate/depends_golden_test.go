package translate_test

import (
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
)

// TestDependsSoundOnGoldenCases checks Affects against translation itself
// on every golden case: each VirtualService, DestinationRule, ServiceEntry
// and Sidecar of the case is removed (and, the other way round, added), and
// every scope the change is said not to affect — the case's own, a sidecar
// of every namespace, with and without labels, and a router — must
// translate to the very same config before and after.
func TestDependsSoundOnGoldenCases(t *testing.T) {
	cases, err := filepath.Glob("testdata/*/in.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, cases)
	kinds := []model.Kind{model.KindVirtualService, model.KindDestinationRule, model.KindServiceEntry, model.KindSidecar}
	skipped, checked := 0, 0
	for _, in := range cases {
		name := filepath.Base(filepath.Dir(in))
		t.Run(name, func(t *testing.T) {
			scope, opts := readScope(t, in)
			snap := loadStore(t, in).Current()
			scopes := goldenScopes(t, snap, scope)
			full := translate.NewIndex(snap, opts)
			for _, k := range kinds {
				for _, cfg := range snap.Configs(k) {
					less, _ := snap.With([]model.Change{{Kind: k, Namespace: cfg.Namespace, Name: cfg.Name}})
					without := translate.NewIndexFrom(full, less, opts)
					dirs := []struct {
						what     string
						from, to *translate.Index
					}{{"removed", full, without}, {"added", translate.NewIndex(less, opts), full}}
					if k == model.KindDestinationRule {
						// A traffic policy change, subsets kept: the rule's
						// namespace decides who is affected.
						mod := *cfg
						spec := proto.Clone(cfg.Spec).(*networking.DestinationRule)
						if spec.TrafficPolicy == nil {
							spec.TrafficPolicy = &networking.TrafficPolicy{}
						}
						spec.TrafficPolicy.ConnectionPool = &networking.ConnectionPoolSettings{
							Tcp: &networking.ConnectionPoolSettings_TCPSettings{MaxConnections: 12345}}
						mod.Spec = spec
						changed, _ := snap.With([]model.Change{{Kind: k, Namespace: cfg.Namespace, Name: cfg.Name, Object: &mod}})
						dirs = append(dirs, struct {
							what     string
							from, to *translate.Index
						}{"modified", full, translate.NewIndexFrom(full, changed, opts)})
					}
					for _, dir := range dirs {
						d := translate.Changes(dir.from, dir.to)
						for _, sc := range scopes {
							if ok, _ := d.Affects(sc); ok {
								continue
							}
							skipped++
							assert.True(t, sameConfig(translate.Build(dir.from, sc), translate.Build(dir.to, sc)),
								"%s %s %s: scope %s is said unaffected but its config changed", k, cfg.Key(), dir.what, sc.Key())
						}
						checked += len(scopes)
					}
				}
			}
		})
	}
	t.Logf("%d scope rebuilds of %d skipped, each checked against translation", skipped, checked)
	assert.Positive(t, skipped)
}

// goldenScopes is the case's scope, a sidecar of every namespace of the
// case (with the case's labels, and without), a proxyless gRPC client of
// each, and a router.
func goldenScopes(t *testing.T, snap *model.Snapshot, scope model.Scope) []model.Scope {
	nss := map[string]bool{scope.Namespace: true}
	for _, svc := range snap.Services() {
		nss[svc.Namespace] = true
	}
	for _, k := range []model.Kind{model.KindVirtualService, model.KindDestinationRule, model.KindSidecar} {
		for _, c := range snap.Configs(k) {
			nss[c.Namespace] = true
		}
	}
	names := make([]string, 0, len(nss))
	for ns := range nss {
		names = append(names, ns)
	}
	sort.Strings(names)
	out := []model.Scope{scope, {Type: model.Router, Namespace: "istio-system", Labels: "istio=ingressgateway"}}
	for _, ns := range names {
		out = append(out,
			model.Scope{Type: model.SidecarProxy, Namespace: ns},
			model.Scope{Type: model.SidecarProxy, Namespace: ns, Labels: scope.Labels},
			model.Scope{Type: model.SidecarProxy, Generator: model.GeneratorGRPC, Namespace: ns})
	}
	if os.Getenv("DEPENDS_VERBOSE") != "" {
		t.Logf("scopes: %v", out)
	}
	return out
}
