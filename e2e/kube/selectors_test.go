package kube

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/internal/model"
)

// meshConfigMap creates the istio ConfigMap holding mesh in namespace ns.
func (c *cluster) meshConfigMap(ns, mesh string) {
	_, err := c.kube.CoreV1().ConfigMaps(ns).Create(c.ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "istio", Namespace: ns}, Data: map[string]string{"mesh": mesh},
	}, metav1.CreateOptions{})
	require.NoError(c.t, err)
}

func (c *cluster) updateMeshConfigMap(ns, mesh string) {
	cm, err := c.kube.CoreV1().ConfigMaps(ns).Get(c.ctx, "istio", metav1.GetOptions{})
	require.NoError(c.t, err)
	cm.Data["mesh"] = mesh
	_, err = c.kube.CoreV1().ConfigMaps(ns).Update(c.ctx, cm, metav1.UpdateOptions{})
	require.NoError(c.t, err)
}

// configDump returns what meshd sent proxyID, as JSON text.
func configDump(t *testing.T, m *harness.Meshd, proxyID string) string {
	resp, err := http.Get(m.AdminURL + "/debug/config_dump?proxyID=" + url.QueryEscape(proxyID))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	return string(b)
}

// TestDiscoverySelectors: a namespace outside MeshConfig's discoverySelectors
// (read from the istio ConfigMap) is invisible — not in /debug/registryz,
// not in any proxy's config — and a change to the ConfigMap takes effect
// without a restart.
func TestDiscoverySelectors(t *testing.T) {
	c := newCluster(t)
	c.namespace("sel-system", nil)
	c.meshConfigMap("sel-system", "discoverySelectors:\n- matchLabels: {meshd-e2e: selected}\n")
	c.namespace("sel-in", map[string]string{"meshd-e2e": "selected"})
	c.namespace("sel-out", map[string]string{"team": "b"})
	for i, ns := range []string{"sel-in", "sel-out"} {
		c.service(ns, "echo", 7070)
		b := harness.StartBackend(t, ns, backendIP(4, i+1), 7070)
		c.createSlice(slice(ns, "echo-1", "echo", 7070, ep{b: b, ready: true}))
	}
	m := startMeshd(t, "sel-system")
	node := nodeID("client", "sel-in")
	conn := harness.DialXDS(t, m.XDSAddr, node, "sel-in", "xds:///echo.sel-in.svc.cluster.local:7070")
	got := harness.Spread(t, conn, 10)
	require.Equal(t, 10, got["sel-in"])

	require.True(t, registryHas(t, m, "echo.sel-in.svc"), "selected namespace must be in the registry")
	require.False(t, registryHas(t, m, "echo.sel-out.svc"), "unselected namespace must not be in /debug/registryz")
	dump := configDump(t, m, node)
	require.Contains(t, dump, "echo.sel-in.svc.cluster.local")
	require.NotContains(t, dump, "sel-out", "no proxy may see the unselected namespace's services")

	// Select team=b instead: sel-out appears, sel-in goes — no restart.
	c.updateMeshConfigMap("sel-system", "discoverySelectors:\n- matchLabels: {team: b}\n")
	require.Eventually(t, func() bool {
		return registryHas(t, m, "echo.sel-out.svc") && !registryHas(t, m, "echo.sel-in.svc")
	}, 15*time.Second, 50*time.Millisecond, "the new discoverySelectors must apply without a restart")
	require.Eventually(t, func() bool {
		return strings.Contains(configDump(t, m, node), "echo.sel-out.svc.cluster.local")
	}, 15*time.Second, 50*time.Millisecond, "the proxy must receive the newly selected namespace")

	// A broken ConfigMap is reported; the last good mesh config stays.
	c.updateMeshConfigMap("sel-system", "discoverySelectors: [\n")
	var oe *model.ObjectError
	require.Eventually(t, func() bool {
		oe = configzError(t, m, "ConfigMap", "sel-system", "istio")
		return oe != nil
	}, 15*time.Second, 50*time.Millisecond, "/debug/configz must show the broken mesh ConfigMap")
	t.Logf("broken ConfigMap reported: %s: %s", oe.Field, oe.Message)
	assert.Equal(t, "data.mesh", oe.Field)
	assert.True(t, registryHas(t, m, "echo.sel-out.svc") && !registryHas(t, m, "echo.sel-in.svc"),
		"the last good discoverySelectors stay in force")
}
