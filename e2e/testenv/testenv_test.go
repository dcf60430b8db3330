package testenv_test

import (
	"context"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/e2e/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) { os.Exit(testenv.Main(m, testenv.Options{}, &env)) }

// obj is a loosely typed Kubernetes object.
type obj = map[string]any

func TestCoreObjects(t *testing.T) {
	e := testenv.Need(t, env)
	defer e.DumpLogs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	ns := obj{"apiVersion": "v1", "kind": "Namespace", "metadata": obj{"name": "testenv-core"}}
	require.NoError(t, e.Do(ctx, http.MethodPost, "/api/v1/namespaces", ns, nil))

	svc := obj{"apiVersion": "v1", "kind": "Service", "metadata": obj{"name": "reviews"},
		"spec": obj{"ports": []obj{{"name": "http", "port": 9080}}}}
	var got struct {
		Spec struct {
			ClusterIP string `json:"clusterIP"`
		} `json:"spec"`
	}
	require.NoError(t, e.Do(ctx, http.MethodPost, "/api/v1/namespaces/testenv-core/services", svc, &got))
	ip, err := netip.ParseAddr(got.Spec.ClusterIP)
	require.NoError(t, err)
	assert.True(t, netip.MustParsePrefix("10.96.0.0/16").Contains(ip), "cluster IP %s", ip)

	// Pods are admitted without a "default" ServiceAccount (no controllers run).
	pod := obj{"apiVersion": "v1", "kind": "Pod", "metadata": obj{"name": "reviews-1"},
		"spec": obj{"nodeName": "node-1", "containers": []obj{{"name": "app", "image": "reviews"}}}}
	require.NoError(t, e.Do(ctx, http.MethodPost, "/api/v1/namespaces/testenv-core/pods", pod, nil))

	err = e.Do(ctx, http.MethodGet, "/api/v1/namespaces/testenv-core/services/nope", nil, nil)
	assert.True(t, testenv.IsStatus(err, http.StatusNotFound), "%v", err)
}

func TestEndpointSlicesRefuseLoopback(t *testing.T) {
	e := testenv.Need(t, env)
	defer e.DumpLogs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	slice := func(name, addr string) obj {
		return obj{"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
			"metadata":    obj{"name": name, "labels": obj{"kubernetes.io/service-name": "reviews"}},
			"addressType": "IPv4", "ports": []obj{{"name": "http", "port": 9080}},
			"endpoints": []obj{{"addresses": []string{addr}}}}
	}
	path := "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
	require.NoError(t, e.Do(ctx, http.MethodPost, path, slice("ok", "10.250.0.7"), nil))
	err := e.Do(ctx, http.MethodPost, path, slice("loopback", "127.0.0.1"), nil)
	assert.True(t, testenv.IsStatus(err, http.StatusUnprocessableEntity), "%v", err)
}

func TestIstioCRDs(t *testing.T) {
	e := testenv.Need(t, env)
	defer e.DumpLogs(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	path := "/apis/networking.istio.io/v1/namespaces/default/virtualservices"
	var list struct {
		Items []obj `json:"items"`
	}
	require.NoError(t, e.Do(ctx, http.MethodGet, path, nil, &list))
	assert.Empty(t, list.Items)

	vs := []byte(`apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: reviews
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
`)
	require.NoError(t, e.Do(ctx, http.MethodPost, path, vs, nil))
	require.NoError(t, e.Do(ctx, http.MethodGet, path, nil, &list))
	assert.Len(t, list.Items, 1)
}

func TestKubeconfigAndVersion(t *testing.T) {
	e := testenv.Need(t, env)
	assert.True(t, strings.HasPrefix(e.URL, "https://127.0.0.1:"), e.URL)
	cfg, err := os.ReadFile(e.Kubeconfig)
	require.NoError(t, err)
	assert.Contains(t, string(cfg), "server: "+e.URL)
	assert.Contains(t, string(cfg), "token: "+e.Token)

	var version struct {
		GitVersion string `json:"gitVersion"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, e.Do(ctx, http.MethodGet, "/version", nil, &version))
	t.Logf("kube-apiserver %s", version.GitVersion)
	assert.NotContains(t, version.GitVersion, "master")
}

// TestSecondEnv starts a second, CRD-less environment next to the shared one
// and checks Stop takes it down completely.
func TestSecondEnv(t *testing.T) {
	testenv.Need(t, env)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	began := time.Now()
	e, err := testenv.Start(ctx, testenv.Options{SkipCRDs: true, Logf: t.Logf})
	require.NoError(t, err)
	t.Logf("second env up in %v", time.Since(began).Round(time.Millisecond))
	require.NoError(t, e.Do(ctx, http.MethodGet, "/api/v1/namespaces/default", nil, nil))

	require.NoError(t, e.Stop())
	require.NoError(t, e.Stop(), "Stop is idempotent")
	_, err = os.Stat(e.Dir)
	assert.True(t, os.IsNotExist(err), "temp dir removed: %v", err)
	assert.Error(t, e.Do(ctx, http.MethodGet, "/readyz", nil, nil), "API server gone")
}
