package kube

import (
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/e2e/harness"
)

// TestAuthorizationBetweenAgentSidecars: two client sidecars (Istio's
// pilot-agent with meshd-issued certificates, service accounts transfer
// and loan of namespaces transfer and loan) call a server sidecar over
// ISTIO_MUTUAL. An AuthorizationPolicy
// allowing only cluster.local/ns/transfer/sa/transfer, created through the API
// server, lets transfer through and gives loan 403 "RBAC: access denied";
// a DENY on /admin then beats the ALLOW for transfer too; deleting both
// opens the server again. Every change reaches the running Envoys (no
// restart) and none is rejected.
func TestAuthorizationBetweenAgentSidecars(t *testing.T) {
	const ns, sys, podIP, appPort = "authz", "authz-system", "10.250.63.2", 18081
	es := setUpEcho(t, ns, sys, podIP, appPort, map[string]string{"app": "echo"}, map[string]int{"transfer": 7, "loan": 8})
	c, app, vip, transferNet, loanNet := es.c, es.app, es.vip, es.nets["transfer"], es.nets["loan"]
	// The callers run in namespaces of their own, as the bank's transfer
	// and loan services do.
	for _, caller := range []string{"transfer", "loan"} {
		c.namespace(caller, nil)
		c.serviceAccount(caller, caller)
	}

	am := startAgentMesh(t, c, ns, sys)
	server := am.agent("server", "echo-0", podIP, map[string]string{"app": "echo"}, nil)
	transfer := am.agentIn("transfer", "transfer", "transfer-0", "", map[string]string{"app": "transfer"}, transferNet)
	loan := am.agentIn("loan", "loan", "loan-0", "", map[string]string{"app": "loan"}, loanNet)

	host := "echo." + ns + ".svc.cluster.local"
	call := func(n *harness.ChildNet, path string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, "http://"+vip+":8080"+path, nil)
		require.NoError(t, err)
		req.Host = host
		resp, err := n.HTTPClient().Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	wait := func(n *harness.ChildNet, path string, status int, what string) string {
		var got int
		var body string
		require.Eventually(t, func() bool { got, body = call(n, path); return got == status }, 30*time.Second, 100*time.Millisecond,
			"%s: want %d, last %d %q", what, status, got, body)
		return body
	}
	wait(transferNet, "/", http.StatusOK, "no policy: transfer reaches the server")
	wait(loanNet, "/", http.StatusOK, "no policy: loan reaches the server")
	ldsBefore := server.Counter(t, "listener_manager.lds.update_success")

	allow := &securityv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "only-transfer", Namespace: ns}}
	allow.Spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "echo"}}
	allow.Spec.Action = security.AuthorizationPolicy_ALLOW
	allow.Spec.Rules = []*security.Rule{{From: []*security.Rule_From{{Source: &security.Source{
		Principals: []string{"cluster.local/ns/transfer/sa/transfer"}}}}}}
	_, err := c.istio.SecurityV1().AuthorizationPolicies(ns).Create(c.ctx, allow, metav1.CreateOptions{})
	require.NoError(t, err)
	body := wait(loanNet, "/", http.StatusForbidden, "ALLOW transfer only: loan is denied")
	assert.Equal(t, "RBAC: access denied", body)
	wait(transferNet, "/", http.StatusOK, "ALLOW transfer only: transfer still passes")
	hits := app.Hits()
	code, _ := call(loanNet, "/")
	assert.Equal(t, http.StatusForbidden, code)
	assert.Equal(t, hits, app.Hits(), "a denied request never reaches the application")

	deny := &securityv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "no-admin", Namespace: ns}}
	deny.Spec.Action = security.AuthorizationPolicy_DENY
	deny.Spec.Rules = []*security.Rule{{To: []*security.Rule_To{{Operation: &security.Operation{Paths: []string{"/admin*"}}}}}}
	_, err = c.istio.SecurityV1().AuthorizationPolicies(ns).Create(c.ctx, deny, metav1.CreateOptions{})
	require.NoError(t, err)
	body = wait(transferNet, "/admin/x", http.StatusForbidden, "DENY /admin* beats the ALLOW")
	assert.Equal(t, "RBAC: access denied", body)
	code, _ = call(transferNet, "/")
	assert.Equal(t, http.StatusOK, code, "the DENY leaves transfer's other paths allowed")

	for _, name := range []string{"only-transfer", "no-admin"} {
		require.NoError(t, c.istio.SecurityV1().AuthorizationPolicies(ns).Delete(c.ctx, name, metav1.DeleteOptions{}))
	}
	wait(loanNet, "/admin/x", http.StatusOK, "policies deleted: loan reaches /admin")

	assert.False(t, server.Exited(), "the server's Envoy kept running")
	assert.GreaterOrEqual(t, server.Counter(t, "listener_manager.lds.update_success"), ldsBefore+3,
		"each change arrived as a listener update")
	for _, a := range []*harness.PilotAgent{server, transfer, loan} {
		a.RequireNoRejects(t)
	}
}
