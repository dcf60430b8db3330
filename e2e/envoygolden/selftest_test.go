package envoygolden

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	upstreamhttp "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/e2e/testenv"
)

// validatable is what go-control-plane's generated ValidateAll gives every
// resource; meshd runs it on everything it serves.
type validatable interface{ ValidateAll() error }

// TestVerdictCatchesRejection proves the check cannot pass silently: each
// row breaks one resource of a real golden case in a way go-control-plane's
// ValidateAll accepts (so meshd's own validation would let it through) and
// real Envoy rejects, and the verdict must fail with Envoy's message.
func TestVerdictCatchesRejection(t *testing.T) {
	for _, tc := range []struct {
		name string
		// breakIt changes the case and returns the resource it broke.
		breakIt func(t *testing.T, c *Case) validatable
		// want is part of Envoy's message.
		want string
	}{
		{
			name: "RDS duplicate virtual host domain",
			breakIt: func(t *testing.T, c *Case) validatable {
				vh := c.Routes[0].GetVirtualHosts()[0]
				vh.Domains = append(vh.Domains, vh.Domains[0])
				return c.Routes[0]
			},
			want: "Only unique values for domains are permitted",
		},
		{
			name: "LDS router filter not last",
			breakIt: func(t *testing.T, c *Case) validatable {
				return editHCM(t, c, func(m *hcm.HttpConnectionManager) {
					n := len(m.HttpFilters)
					m.HttpFilters[0], m.HttpFilters[n-1] = m.HttpFilters[n-1], m.HttpFilters[0]
				})
			},
			want: "must be the last filter in a http filter chain",
		},
		{
			name: "CDS protocol options under an unknown extension name",
			breakIt: func(t *testing.T, c *Case) validatable {
				opts, err := anypb.New(&upstreamhttp.HttpProtocolOptions{})
				require.NoError(t, err)
				cl := findCluster(t, c, cluster.Cluster_EDS)
				cl.TypedExtensionProtocolOptions = map[string]*anypb.Any{"envoy.extensions.upstreams.http.v3.NoSuchOptions": opts}
				return cl
			},
			want: "envoy.extensions.upstreams.http.v3.NoSuchOptions",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			root, err := testenv.RepoRoot()
			require.NoError(t, err)
			c, err := LoadCase(filepath.Join(root, "translate", "testdata", "plain-service"))
			require.NoError(t, err)
			broken := tc.breakIt(t, c)
			require.NoError(t, broken.ValidateAll(), "the broken resource must pass ValidateAll, or this row proves nothing about Envoy")
			p, err := NewPlan(c, func() int { return harness.FreePort(t) }, t.TempDir())
			require.NoError(t, err)
			v := Run(t, envoyBin, p)
			require.NotEmpty(t, v.Problems, "the verdict passed a case Envoy must reject")
			all := strings.Join(v.Problems, "\n")
			require.Contains(t, strings.ToLower(all), strings.ToLower(tc.want), "the verdict must carry Envoy's message")
			t.Logf("verdict, as a golden case would report it:\n%s", all)
		})
	}
}

// editHCM applies edit to the HttpConnectionManager of the case's first
// HTTP listener and returns the listener.
func editHCM(t *testing.T, c *Case, edit func(*hcm.HttpConnectionManager)) validatable {
	t.Helper()
	for _, l := range c.Listeners {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				m := &hcm.HttpConnectionManager{}
				if f.GetTypedConfig() == nil || f.GetTypedConfig().UnmarshalTo(m) != nil {
					continue
				}
				edit(m)
				f.ConfigType = &listener.Filter_TypedConfig{TypedConfig: mustAny(m)}
				return l
			}
		}
	}
	t.Fatal("no HTTP listener in the case")
	return nil
}

func findCluster(t *testing.T, c *Case, typ cluster.Cluster_DiscoveryType) *cluster.Cluster {
	t.Helper()
	for _, cl := range c.Clusters {
		if cl.GetType() == typ && cl.GetClusterDiscoveryType() != nil {
			return cl
		}
	}
	t.Fatalf("no %s cluster in the case", typ)
	return nil
}

// TestUnreferencedResourcesReachEnvoy covers the plan's synthetic resources:
// with plain-service's HTTP listener and EDS cluster gone, its route config
// and ClusterLoadAssignment are referenced by nothing, and Envoy would never
// ask for them. The plan's synthetic listener and cluster must make Envoy
// load them: a good route config passes, a broken one fails.
func TestUnreferencedResourcesReachEnvoy(t *testing.T) {
	for _, broken := range []bool{false, true} {
		t.Run(fmt.Sprintf("broken=%v", broken), func(t *testing.T) {
			t.Parallel()
			root, err := testenv.RepoRoot()
			require.NoError(t, err)
			c, err := LoadCase(filepath.Join(root, "translate", "testdata", "plain-service"))
			require.NoError(t, err)
			c.Listeners = slices.DeleteFunc(c.Listeners, func(l *listener.Listener) bool { return l.GetName() == "0.0.0.0_8080" })
			c.Clusters = slices.DeleteFunc(c.Clusters, func(cl *cluster.Cluster) bool { return EDSName(cl) != "" })
			if broken {
				vh := c.Routes[0].GetVirtualHosts()[0]
				vh.Domains = append(vh.Domains, vh.Domains[0])
			}
			p, err := NewPlan(c, func() int { return harness.FreePort(t) }, t.TempDir())
			require.NoError(t, err)
			names := p.Names()
			require.Contains(t, names["listeners"], routeListenerPrefix+"8080")
			require.Contains(t, names["clusters"], edsClusterPrefix+"outbound|8080||frontend.shop.svc.cluster.local")
			v := Run(t, envoyBin, p)
			if !broken {
				require.Empty(t, v.Problems)
				return
			}
			require.Contains(t, strings.Join(v.Problems, "\n"), "Only unique values for domains are permitted")
		})
	}
}

// TestVerdictCatchesWarming proves a case whose secrets never arrive fails:
// dr-tls's clusters name SDS secrets (over ADS and over sds-grpc), the
// server withholds them, and Envoy keeps the clusters, and itself, warming.
// The verdict must name what still warms and that Envoy is not LIVE.
func TestVerdictCatchesWarming(t *testing.T) {
	t.Parallel()
	root, err := testenv.RepoRoot()
	require.NoError(t, err)
	c, err := LoadCase(filepath.Join(root, "translate", "testdata", "dr-tls"))
	require.NoError(t, err)
	p, err := NewPlan(c, func() int { return harness.FreePort(t) }, t.TempDir())
	require.NoError(t, err)
	require.NotEmpty(t, p.Secrets, "dr-tls must name SDS secrets, or this test proves nothing")
	var withheld []string
	for _, s := range p.Secrets {
		withheld = append(withheld, s.GetName())
	}
	p.Secrets = nil
	v := Run(t, envoyBin, p)
	all := strings.Join(v.Problems, "\n")
	t.Logf("verdict, as a golden case would report it:\n%s", all)
	require.Contains(t, all, "cluster outbound|8080||accounts.shop.svc.cluster.local is still warming")
	require.Contains(t, all, "not LIVE")
	for _, n := range withheld {
		require.Contains(t, all, "secret "+n+" is still warming")
	}
}
