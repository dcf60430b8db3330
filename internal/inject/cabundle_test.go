package inject

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admregv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func mwc(name, rv string, bundles ...string) *admregv1.MutatingWebhookConfiguration {
	c := &admregv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: name, ResourceVersion: rv}}
	for i, b := range bundles {
		c.Webhooks = append(c.Webhooks, admregv1.MutatingWebhook{Name: string(rune('a'+i)) + ".sidecar-injector.istio.io",
			ClientConfig: admregv1.WebhookClientConfig{CABundle: []byte(b)}})
	}
	return c
}

func TestCABundlePatch(t *testing.T) {
	p, err := caBundlePatch(mwc("x", "7", "root", "old", ""), []byte("root"))
	require.NoError(t, err)
	assert.JSONEq(t, `[{"op":"test","path":"/metadata/resourceVersion","value":"7"},
		{"op":"add","path":"/webhooks/1/clientConfig/caBundle","value":"cm9vdA=="},
		{"op":"add","path":"/webhooks/2/clientConfig/caBundle","value":"cm9vdA=="}]`, string(p))
	p, err = caBundlePatch(mwc("x", "7", "root"), []byte("root"))
	require.NoError(t, err)
	assert.Nil(t, p, "nothing to change, no patch")
}

func bundles(t *testing.T, c *fake.Clientset, name string) []string {
	cfg, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	var out []string
	for _, w := range cfg.Webhooks {
		out = append(out, string(w.ClientConfig.CABundle))
	}
	return out
}

func TestCABundlePatcherKeepsTheRoot(t *testing.T) {
	const name = "istio-sidecar-injector"
	c := fake.NewClientset(mwc(name, "1", "", "stale"))
	p := NewCABundlePatcher(c.AdmissionregistrationV1().MutatingWebhookConfigurations(),
		CABundleOptions{Name: name, Root: []byte("ROOT"), Backoff: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	require.Eventually(t, func() bool {
		b := bundles(t, c, name)
		return len(b) == 2 && b[0] == "ROOT" && b[1] == "ROOT"
	}, 5*time.Second, 10*time.Millisecond, "every webhook gets the root")

	// Someone edits it (e.g. a Helm upgrade puts an empty caBundle back).
	edited := mwc(name, "2", "", "ROOT", "")
	_, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Update(context.Background(), edited, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		b := bundles(t, c, name)
		return len(b) == 3 && b[0] == "ROOT" && b[1] == "ROOT" && b[2] == "ROOT"
	}, 5*time.Second, 10*time.Millisecond, "re-patched after the edit")
}

func TestCABundlePatcherWaitsForTheConfiguration(t *testing.T) {
	const name = "istio-sidecar-injector-canary"
	c := fake.NewClientset()
	p := NewCABundlePatcher(c.AdmissionregistrationV1().MutatingWebhookConfigurations(),
		CABundleOptions{Name: name, Root: []byte("ROOT"), Backoff: 10 * time.Millisecond, Resync: 100 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); require.NoError(t, <-done) }()

	time.Sleep(50 * time.Millisecond) // the patcher is watching for it
	_, err := c.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(context.Background(), mwc(name, "1", ""), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		b := bundles(t, c, name)
		return len(b) == 1 && b[0] == "ROOT"
	}, 5*time.Second, 10*time.Millisecond)
}

// TestCABundleFromFile: with a custom serving certificate the caBundle is
// its CA file's content, read again on every sync (rotation).
func TestCABundleFromFile(t *testing.T) {
	const name = "istio-sidecar-injector"
	file := filepath.Join(t.TempDir(), "ca.crt")
	require.NoError(t, os.WriteFile(file, []byte("CUSTOM-CA-1"), 0o600))
	c := fake.NewClientset(mwc(name, "1", "old"))
	p := NewCABundlePatcher(c.AdmissionregistrationV1().MutatingWebhookConfigurations(),
		CABundleOptions{Name: name, Root: []byte("MESH-ROOT"), RootFile: file})
	_, err := p.Sync(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"CUSTOM-CA-1"}, bundles(t, c, name), "the file wins over the mesh root")
	require.NoError(t, os.WriteFile(file, []byte("CUSTOM-CA-2"), 0o600))
	_, err = p.Sync(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{"CUSTOM-CA-2"}, bundles(t, c, name), "a rotated bundle is patched in")
	require.NoError(t, os.Remove(file))
	_, err = p.Sync(context.Background())
	require.ErrorContains(t, err, "reading the webhook's CA bundle")
}
