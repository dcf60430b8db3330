package kube

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
)

// TestEnvoyIngressGateways: the bank's ingress split by traffic type. Two
// gateway deployments (real Envoy routers bootstrapped by `meshd bootstrap
// --type router`, each in a network namespace of its own as a pod is),
// selected by `istio: ingress-public` and `istio: ingress-internal`; each
// serves only its own Gateway's host (the other's gets 404), and a canary
// split through the public ingress is measured on real requests.
func TestEnvoyIngressGateways(t *testing.T) {
	c := newCluster(t)
	m := startMeshdOnAll(t, "envoy-gw-system")
	const gwNS, appNS = "envoy-ingress", "envoy-gw-apps"
	const shopHost, toolsHost = "shop.bank.example", "tools.bank.example"
	c.namespace(gwNS, nil)
	c.namespace(appNS, nil)
	c.httpService(appNS, "shop", 8080)
	c.httpService(appNS, "tools", 8080)
	v1 := harness.StartHTTPBackend(t, "shop-v1", backendIP(52, 1), 8080)
	v2 := harness.StartHTTPBackend(t, "shop-v2", backendIP(52, 2), 8080)
	tools := harness.StartHTTPBackend(t, "tools-0", backendIP(52, 3), 8080)
	c.pod(appNS, "shop-v1", map[string]string{"app": "shop", "version": "v1"})
	c.pod(appNS, "shop-v2", map[string]string{"app": "shop", "version": "v2"})
	c.createSlice(httpSlice(appNS, "shop-1", "shop", 8080, hep{b: v1, pod: "shop-v1", ready: true}, hep{b: v2, pod: "shop-v2", ready: true}))
	c.createSlice(httpSlice(appNS, "tools-1", "tools", 8080, hep{b: tools, ready: true}))
	c.versionSubsets(appNS, "shop")
	gateway := func(name, selector, host string) {
		gw := &networkingv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: gwNS}}
		gw.Spec.Selector = map[string]string{"istio": selector}
		gw.Spec.Servers = []*networking.Server{{
			Port:  &networking.Port{Number: 8080, Name: "http", Protocol: "HTTP"},
			Hosts: []string{appNS + "/" + host},
		}}
		_, err := c.istio.NetworkingV1().Gateways(gwNS).Create(c.ctx, gw, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	gateway("public", "ingress-public", shopHost)
	gateway("internal", "ingress-internal", toolsHost)
	shopVS := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "shop", Namespace: appNS}}
	shopVS.Spec.Hosts, shopVS.Spec.Gateways = []string{shopHost}, []string{gwNS + "/public"}
	shopVS.Spec.Http = []*networking.HTTPRoute{{Route: []*networking.HTTPRouteDestination{
		{Destination: &networking.Destination{Host: "shop", Subset: "v1"}, Weight: 90},
		{Destination: &networking.Destination{Host: "shop", Subset: "v2"}, Weight: 10},
	}}}
	_, err := c.istio.NetworkingV1().VirtualServices(appNS).Create(c.ctx, shopVS, metav1.CreateOptions{})
	require.NoError(t, err)
	toolsVS := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "tools", Namespace: appNS}}
	toolsVS.Spec.Hosts, toolsVS.Spec.Gateways = []string{toolsHost}, []string{gwNS + "/internal"}
	toolsVS.Spec.Http = []*networking.HTTPRoute{{Route: dst("tools", "")}}
	_, err = c.istio.NetworkingV1().VirtualServices(appNS).Create(c.ctx, toolsVS, metav1.CreateOptions{})
	require.NoError(t, err)

	pubNet, intNet := harness.NewChildNet(t, 2), harness.NewChildNet(t, 3)
	pub := startSidecarIn(t, m, pubNet, gwNS, "public-0", pubNet.PeerIP, map[string]string{"istio": "ingress-public"}, "--type", "router")
	startSidecarIn(t, m, intNet, gwNS, "internal-0", intNet.PeerIP, map[string]string{"istio": "ingress-internal"}, "--type", "router")
	pubURL, intURL := "http://"+pubNet.PeerIP+":8080/", "http://"+intNet.PeerIP+":8080/"
	require.Eventually(t, func() bool { return get(pubURL, shopHost).Status == http.StatusOK }, 20*time.Second, 50*time.Millisecond,
		"the public ingress serves %s", shopHost)
	require.Eventually(t, func() bool { return get(intURL, toolsHost).Backend == "tools-0" }, 20*time.Second, 50*time.Millisecond,
		"the internal ingress serves %s", toolsHost)
	assert.Equal(t, http.StatusNotFound, get(pubURL, toolsHost).Status, "the public ingress does not serve the internal host")
	assert.Equal(t, http.StatusNotFound, get(intURL, shopHost).Status, "the internal ingress does not serve the public host")

	// The canary through the public ingress: 600 requests per step.
	step := func(w1, w2 int32, tol float64) {
		if w1 != 90 {
			before := pub.statSum(t, ".rds.http.8080.update_success")
			cur, err := c.istio.NetworkingV1().VirtualServices(appNS).Get(c.ctx, "shop", metav1.GetOptions{})
			require.NoError(t, err)
			cur.Spec.Http[0].Route[0].Weight, cur.Spec.Http[0].Route[1].Weight = w1, w2
			_, err = c.istio.NetworkingV1().VirtualServices(appNS).Update(c.ctx, cur, metav1.UpdateOptions{})
			require.NoError(t, err)
			pub.waitStatAbove(t, ".rds.http.8080.update_success", before, 15*time.Second)
		}
		got := spread(t, 600, pubURL, shopHost)
		t.Logf("ingress canary %d/%d over 600 requests: v1 %d, v2 %d, failed %d (v2 share %.3f)", w1, w2, got["shop-v1"], got["shop-v2"], got[""], share(got, "shop-v2"))
		assert.Zero(t, got[""])
		assert.InDelta(t, float64(w2)/100, share(got, "shop-v2"), tol, "%d/%d through the ingress", w1, w2)
	}
	step(90, 10, 0.04)
	step(50, 50, 0.07)
}
