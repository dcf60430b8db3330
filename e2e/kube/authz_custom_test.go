package kube

import (
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
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

// TestExtAuthzCustom: an AuthorizationPolicy CUSTOM sends the requests its
// rules match (paths /account/*) from a real pilot-agent sidecar to a real
// HTTP authorization service, the MeshConfig extension provider "bank-authz"
// (a Service of another namespace, reached over its EDS cluster). The
// service allows requests carrying x-teller: yes and answers 403 with a
// header otherwise: the caller sees the service's verdict, requests
// outside the rules are not checked, and a provider the MeshConfig does
// not name fails closed for what the rules match (reported on the policy).
// No Envoy restart, no rejected update.
func TestExtAuthzCustom(t *testing.T) {
	const ns, sys, podIP, appPort = "extauthz", "extauthz-system", "10.250.65.2", 18083
	const authzIP, authzPort = "10.250.65.9", 18084
	es := setUpEcho(t, ns, sys, podIP, appPort, map[string]string{"app": "echo"}, map[string]int{"client": 10})
	c, app, vip, clientNet := es.c, es.app, es.vip, es.nets["client"]
	c.namespace("bank-security", nil)

	var checks atomic.Int64
	authz := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		checks.Add(1)
		if r.Header.Get("x-teller") == "yes" {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.Header().Set("x-denied-by", "bank-authz")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, "denied by bank-authz")
	})}
	lis, err := net.Listen("tcp", net.JoinHostPort(authzIP, strconv.Itoa(authzPort)))
	require.NoError(t, err)
	go func() { _ = authz.Serve(lis) }()
	t.Cleanup(func() { _ = authz.Close() })
	c.httpServiceTargeting("bank-security", "bank-authz", 8000, authzPort)
	c.createSlice(endpointSlice("bank-security", "bank-authz-1", "bank-authz", "http", authzPort, []epSpec{{ip: authzIP, ready: true}}))
	c.meshConfigMap(sys, `
extensionProviders:
- name: bank-authz
  envoyExtAuthzHttp:
    service: bank-security/bank-authz
    port: 8000
    includeRequestHeadersInCheck: [x-teller]
    headersToDownstreamOnDeny: [x-denied-by]
`)

	am := startAgentMesh(t, c, ns, sys)
	server := am.agent("server", "echo-0", podIP, map[string]string{"app": "echo"}, nil)
	client := am.agent("client", "client-0", "", map[string]string{"app": "client"}, clientNet)

	host := "echo." + ns + ".svc.cluster.local"
	type answer struct {
		code   int
		body   string
		denied string
	}
	call := func(path string, teller bool) answer {
		req, err := http.NewRequest(http.MethodGet, "http://"+vip+":8080"+path, nil)
		require.NoError(t, err)
		req.Host = host
		if teller {
			req.Header.Set("x-teller", "yes")
		}
		resp, err := clientNet.HTTPClient().Do(req)
		if err != nil {
			return answer{body: err.Error()}
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return answer{code: resp.StatusCode, body: string(b), denied: resp.Header.Get("x-denied-by")}
	}
	waitFor := func(path string, teller bool, code int, what string) answer {
		var got answer
		require.Eventually(t, func() bool { got = call(path, teller); return got.code == code }, 30*time.Second, 100*time.Millisecond,
			"%s: want %d, last %+v", what, code, got)
		return got
	}
	waitFor("/account/1", false, http.StatusOK, "no policy: unchecked")
	ldsBefore := server.Counter(t, "listener_manager.lds.update_success")

	policy := &securityv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "tellers-only", Namespace: ns}}
	policy.Spec.Selector = &typev1beta1.WorkloadSelector{MatchLabels: map[string]string{"app": "echo"}}
	policy.Spec.Action = security.AuthorizationPolicy_CUSTOM
	policy.Spec.ActionDetail = &security.AuthorizationPolicy_Provider{Provider: &security.AuthorizationPolicy_ExtensionProvider{Name: "bank-authz"}}
	policy.Spec.Rules = []*security.Rule{{To: []*security.Rule_To{{Operation: &security.Operation{Paths: []string{"/account/*"}}}}}}
	_, err = c.istio.SecurityV1().AuthorizationPolicies(ns).Create(c.ctx, policy, metav1.CreateOptions{})
	require.NoError(t, err)

	denied := waitFor("/account/1", false, http.StatusForbidden, "CUSTOM: the authorization service denies a non-teller")
	assert.Equal(t, "bank-authz", denied.denied, "the service's header on deny reaches the caller")
	assert.Equal(t, "denied by bank-authz", denied.body)
	before := checks.Load()
	hits := app.Hits()
	assert.Equal(t, http.StatusOK, call("/account/1", true).code, "a teller is allowed by the service")
	assert.Equal(t, before+1, checks.Load(), "the allowed request was checked once")
	assert.Equal(t, hits+1, app.Hits(), "and reached the application")
	before = checks.Load()
	assert.Equal(t, http.StatusOK, call("/public", false).code, "outside the rules: no check")
	assert.Equal(t, before, checks.Load(), "the service was not asked about /public")

	// A provider the MeshConfig does not name: the rules' requests are denied.
	policy.Spec.ActionDetail = &security.AuthorizationPolicy_Provider{Provider: &security.AuthorizationPolicy_ExtensionProvider{Name: "no-such-provider"}}
	cur, err := c.istio.SecurityV1().AuthorizationPolicies(ns).Get(c.ctx, policy.Name, metav1.GetOptions{})
	require.NoError(t, err)
	cur.Spec.ActionDetail = policy.Spec.ActionDetail
	_, err = c.istio.SecurityV1().AuthorizationPolicies(ns).Update(c.ctx, cur, metav1.UpdateOptions{})
	require.NoError(t, err)
	got := waitFor("/account/2", true, http.StatusForbidden, "unknown provider: the rules' requests are denied (fail closed)")
	assert.Equal(t, "RBAC: access denied", got.body)
	assert.Equal(t, http.StatusOK, call("/public", false).code, "requests outside the rules still pass")
	var reported bool
	require.Eventually(t, func() bool {
		for _, e := range configzErrors(t, am.meshd) {
			if e.Name == "tellers-only" && e.Field == "spec.provider.name" {
				reported = true
			}
		}
		return reported
	}, 20*time.Second, 100*time.Millisecond, "/debug/configz reports the unknown provider on the policy")

	require.NoError(t, c.istio.SecurityV1().AuthorizationPolicies(ns).Delete(c.ctx, policy.Name, metav1.DeleteOptions{}))
	waitFor("/account/3", false, http.StatusOK, "policy deleted: unchecked again")
	assert.False(t, server.Exited(), "the server's Envoy kept running")
	assert.GreaterOrEqual(t, server.Counter(t, "listener_manager.lds.update_success"), ldsBefore+3, "each change arrived as a listener update")
	for _, a := range []*harness.PilotAgent{server, client} {
		a.RequireNoRejects(t)
	}
	t.Logf("ext_authz checks answered by the authorization service: %s", strconv.FormatInt(checks.Load(), 10))
}
