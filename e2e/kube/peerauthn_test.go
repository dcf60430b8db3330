package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	security "istio.io/api/security/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
)

// requireStrictToggles: a namespace-wide PeerAuthentication STRICT for
// ns, created through the API server, reaches the running server sidecar
// (a new listener, same Envoy): plaintext from the client's network
// namespace straight to the pod (direct, host:port) is refused by Envoy
// (no filter chain matches it) and never reaches app, while the client sidecar's ISTIO_MUTUAL
// request to vip still reaches the application with the caller's
// certificate in x-forwarded-client-cert. Updated to PERMISSIVE, both
// plaintext and mTLS pass on the same port; deleted, plaintext still does.
func requireStrictToggles(t *testing.T, c *cluster, ns string, clientNet *harness.ChildNet, server *harness.PilotAgent,
	app *harness.HTTPBackend, vip, direct string,
) {
	t.Helper()
	ldsBefore := server.Counter(t, "listener_manager.lds.update_success")
	pa := &securityv1.PeerAuthentication{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}
	pa.Spec.Mtls = &security.PeerAuthentication_MutualTLS{Mode: security.PeerAuthentication_MutualTLS_STRICT}
	_, err := c.istio.SecurityV1().PeerAuthentications(ns).Create(c.ctx, pa, metav1.CreateOptions{})
	require.NoError(t, err)

	plain := func() reply { return getVia(clientNet.HTTPClient(), "http://"+direct+"/", "echo") }
	var r reply
	require.Eventually(t, func() bool { r = plain(); return r.Err != nil }, 20*time.Second, 100*time.Millisecond,
		"STRICT: plaintext to the pod must be refused; last reply %+v", r)
	t.Logf("STRICT: plaintext refused: %v", r.Err)
	hits := app.Hits()
	r = plain()
	assert.Error(t, r.Err, "STRICT holds")
	assert.Equal(t, hits, app.Hits(), "refused plaintext never reaches the application")
	mtls := getVia(clientNet.HTTPClient(), "http://"+vip+":8080/", "echo."+ns+".svc.cluster.local")
	assert.Equal(t, "echo-0", mtls.Backend, "ISTIO_MUTUAL still reaches the application under STRICT: %+v", mtls)
	assert.Contains(t, mtls.Echo.XFCC, "URI=spiffe://cluster.local/ns/"+ns+"/sa/client")

	// PERMISSIVE, said explicitly: plaintext and mTLS both reach the
	// application, on the same port.
	cur, err := c.istio.SecurityV1().PeerAuthentications(ns).Get(c.ctx, "default", metav1.GetOptions{})
	require.NoError(t, err)
	cur.Spec.Mtls = &security.PeerAuthentication_MutualTLS{Mode: security.PeerAuthentication_MutualTLS_PERMISSIVE}
	_, err = c.istio.SecurityV1().PeerAuthentications(ns).Update(c.ctx, cur, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool { r = plain(); return r.Backend == "echo-0" }, 20*time.Second, 100*time.Millisecond,
		"PERMISSIVE: plaintext reaches the application; last reply %+v", r)
	assert.Empty(t, r.Echo.XFCC, "plaintext: no client certificate")
	mtls = getVia(clientNet.HTTPClient(), "http://"+vip+":8080/", "echo."+ns+".svc.cluster.local")
	assert.Equal(t, "echo-0", mtls.Backend, "PERMISSIVE: ISTIO_MUTUAL reaches the application too: %+v", mtls)
	assert.Contains(t, mtls.Echo.XFCC, "URI=spiffe://cluster.local/ns/"+ns+"/sa/client")

	require.NoError(t, c.istio.SecurityV1().PeerAuthentications(ns).Delete(c.ctx, "default", metav1.DeleteOptions{}))
	r = plain()
	assert.Equal(t, "echo-0", r.Backend, "deleted (PERMISSIVE by default): plaintext still reaches the application; last reply %+v", r)
	assert.False(t, server.Exited(), "the server's Envoy kept running")
	assert.GreaterOrEqual(t, server.Counter(t, "listener_manager.lds.update_success"), ldsBefore+2,
		"both changes arrived as listener updates")
}
