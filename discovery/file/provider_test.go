package file

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newProvider(t *testing.T, dir string) (*Provider, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	p := New(dir, model.NewStore())
	p.Interval = 10 * time.Millisecond
	p.Logger = slog.New(slog.NewTextHandler(logs, nil))
	return p, logs
}

func writeFile(t *testing.T, dir, name, content string) {
	t.Helper()
	path := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

// runProvider runs p until the test ends and checks that Run returns.
func runProvider(t *testing.T, p *Provider) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

func errorFor(snap *model.Snapshot, pred func(model.ObjectError) bool) (model.ObjectError, bool) {
	for _, e := range snap.Errors() {
		if pred(e) {
			return e, true
		}
	}
	return model.ObjectError{}, false
}

func TestLoadDemo(t *testing.T) {
	p, _ := newProvider(t, "../../hack/demo")
	require.NoError(t, p.Load())
	snap := p.Store.Current()
	require.Empty(t, snap.Errors())
	var hosts []string
	for _, s := range snap.Services() {
		hosts = append(hosts, s.Hostname)
	}
	assert.Equal(t, []string{
		"core.bank.example",
		"frontend.shop.svc.cluster.local",
		"ledger.bank.svc.cluster.local",
		"reviews.shop.svc.cluster.local",
	}, hosts)
	assert.Equal(t, 2, snap.Count(model.KindNamespace))
	assert.Equal(t, 5, snap.Count(model.KindPod))
	assert.Equal(t, 3, snap.Count(model.KindEndpointSlice))
	eps := snap.Endpoints("reviews.shop.svc.cluster.local", "shop")
	require.Len(t, eps, 2)
	assert.Equal(t, "v1", eps[0].Labels["version"])
	assert.Equal(t, "v2", eps[1].Labels["version"])
	for _, ep := range eps {
		assert.True(t, ep.Routable())
	}
	vs := snap.Configs(model.KindVirtualService)
	require.Len(t, vs, 1)
	route := vs[0].Spec.(*networking.VirtualService).GetHttp()[0].GetRoute()
	require.Len(t, route, 2)
	assert.Equal(t, []int32{80, 20}, []int32{route[0].GetWeight(), route[1].GetWeight()})
	assert.Equal(t, "shop-reviews-routing.yaml#2", vs[0].Source)
	require.Len(t, snap.Configs(model.KindDestinationRule), 1)
	require.Len(t, snap.Configs(model.KindServiceEntry), 1)
}

func TestLoadDirectoryErrors(t *testing.T) {
	p, _ := newProvider(t, filepath.Join(t.TempDir(), "missing"))
	require.Error(t, p.Load())
	p.Store = nil
	require.Error(t, p.Load())
}
