package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// peerAuthnYAML holds a valid mesh-wide PeerAuthentication and three that
// are reported: portLevelMtls without selector and a port out of range
// (rejected, as istiod's validation), and a selector in the root namespace
// (accepted by validation, applies to nothing: istiod ignores it).
const peerAuthnYAML = `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec:
  mtls: {mode: STRICT}
---
apiVersion: security.istio.io/v1beta1
kind: PeerAuthentication
metadata: {name: wide-ports, namespace: demo}
spec:
  portLevelMtls:
    "7070": {mode: DISABLE}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: big-port, namespace: demo}
spec:
  selector: {matchLabels: {app: echo}}
  portLevelMtls:
    "70000": {mode: DISABLE}
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: root-selector, namespace: istio-system}
spec:
  selector: {matchLabels: {app: echo}}
  mtls: {mode: DISABLE}
`

// TestPeerAuthenticationFileProvider: the file provider reads
// PeerAuthentications (security.istio.io v1 and v1beta1); /debug/configz
// lists them and reports the invalid ones with file, object and field,
// meshd_config_errors counts them under their kind, and fixing the file
// clears the errors without a restart.
func TestPeerAuthenticationFileProvider(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "mesh.yaml", meshYAML)
	writeFile(t, dir, "peerauthn.yaml", peerAuthnYAML)
	m := startMeshd(t, dir)

	type configz struct {
		Configs []struct{ Kind, Namespace, Name string } `json:"configs"`
		Errors  []objectError                            `json:"errors"`
	}
	var cz configz
	m.getJSON(t, "/debug/configz", &cz)
	byName := map[string]objectError{}
	for _, e := range cz.Errors {
		if e.Kind == "PeerAuthentication" {
			byName[e.Name] = e
		}
	}
	require.Len(t, byName, 3, "configz errors: %+v", cz.Errors)
	assert.Equal(t, "spec.portLevelMtls", byName["wide-ports"].Field)
	assert.Equal(t, "peerauthn.yaml#2", byName["wide-ports"].Source)
	assert.Equal(t, "spec.portLevelMtls[70000]", byName["big-port"].Field)
	assert.Equal(t, "spec.selector", byName["root-selector"].Field)
	assert.Contains(t, byName["root-selector"].Message, "root namespace")
	listed := map[string]bool{}
	for _, c := range cz.Configs {
		if c.Kind == "PeerAuthentication" {
			listed[c.Namespace+"/"+c.Name] = true
		}
	}
	assert.True(t, listed["istio-system/default"] && listed["istio-system/root-selector"], "configz configs: %v", listed)
	assert.Equal(t, "3", configErrorsGauge(t, m, "PeerAuthentication"))

	writeFile(t, dir, "peerauthn.yaml", strings.SplitN(peerAuthnYAML, "---\n", 2)[0])
	require.Eventually(t, func() bool { return configErrorsGauge(t, m, "PeerAuthentication") == "" },
		10*time.Second, 100*time.Millisecond, "fixed without a restart: no series for the kind")
}

// configErrorsGauge returns meshd_config_errors{kind} as exported ("" when
// it is not: a kind without errors has no series).
func configErrorsGauge(t *testing.T, m *meshd, kind string) string {
	resp, err := http.Get(m.adminURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	prefix := `meshd_config_errors{kind="` + kind + `"} `
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			return v
		}
	}
	return ""
}
