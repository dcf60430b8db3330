package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
	"github.com/meshd/meshd/xds"
)

type fakeXDS struct {
	ready   bool
	proxies []xds.ProxyStatus
	errs    []model.ObjectError
	pushes  int
}

func (f *fakeXDS) Ready() bool                       { return f.ready }
func (f *fakeXDS) Proxies() []xds.ProxyStatus        { return f.proxies }
func (f *fakeXDS) ConfigErrors() []model.ObjectError { return f.errs }
func (f *fakeXDS) LastPush() xds.PushStatus          { return xds.PushStatus{Seq: 7} }
func (f *fakeXDS) ExplainScope(id string) (translate.ScopeExplanation, error) {
	if id != "p.ns" {
		return translate.ScopeExplanation{}, fmt.Errorf("proxy %q is not connected", id)
	}
	return translate.ScopeExplanation{Scope: "sidecar|envoy|ns|", Authorization: &translate.AuthzExplanation{
		Policies: []translate.AuthzPolicyExplanation{{Namespace: "ns", Name: "allow", Action: "ALLOW", Rules: 1}}}}, nil
}
func (f *fakeXDS) ExplainGateway(id string) (translate.GatewayExplanation, error) {
	switch id {
	case "gw.istio-system":
		return translate.GatewayExplanation{Scope: "router|envoy|istio-system|istio=egressgateway",
			Gateways: []translate.GatewaySelection{{Namespace: "shop", Name: "egress", Reason: "selector matches the proxy's labels"}},
			Ports:    []translate.GatewayPort{{Port: 8080, Protocol: "HTTP", Listener: "0.0.0.0_8080", RouteConfig: "http.8080"}}}, nil
	case "p.ns":
		return translate.GatewayExplanation{}, fmt.Errorf("proxy %q: %w", id, xds.ErrNotGateway)
	}
	return translate.GatewayExplanation{}, fmt.Errorf("proxy %q is not connected", id)
}
func (f *fakeXDS) ForcePush() bool {
	if f.ready {
		f.pushes++
	}
	return f.ready
}
func (f *fakeXDS) ConfigDump(id string) (*adminv3.ConfigDump, error) {
	if id != "p.ns" {
		return nil, errors.New("proxy \"" + id + "\" is not connected")
	}
	return &adminv3.ConfigDump{}, nil
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec
}

func TestAdminEndpoints(t *testing.T) {
	store := model.NewStore()
	store.Apply([]model.Change{
		{Kind: model.KindService, Namespace: "ns", Name: "a", Object: &model.Service{Hostname: "a.ns.svc.cluster.local", Name: "a", Namespace: "ns"}},
		{Kind: model.KindVirtualService, Namespace: "ns", Name: "vs", Object: &model.Config{
			Kind: model.KindVirtualService, Namespace: "ns", Name: "vs", Spec: &networking.VirtualService{Hosts: []string{"a"}}}},
	})
	fx := &fakeXDS{
		proxies: []xds.ProxyStatus{{NodeID: "sidecar~1.2.3.4~p.ns~ns.svc.cluster.local", ID: "p.ns",
			Types: map[string]xds.TypeStatus{"cds": {SentNonce: "2", AckedNonce: "1", SentVersion: "v2"}}}},
		errs: []model.ObjectError{{Kind: model.KindVirtualService, Namespace: "ns", Name: "vs", Field: "spec.http", Message: "bad"}},
	}
	h := New(fx, store, prometheus.NewRegistry())

	assert.Equal(t, http.StatusServiceUnavailable, get(t, h, "/ready").Code, "not ready before the first push")
	assert.Equal(t, http.StatusServiceUnavailable, get(t, h, "/debug/adsz?push=true").Code, "nothing to push yet")
	fx.ready = true
	assert.Equal(t, http.StatusOK, get(t, h, "/ready").Code)
	assert.Equal(t, http.StatusOK, get(t, h, "/debug/adsz?push=true").Code)
	assert.Equal(t, 1, fx.pushes, "?push=true forces one push")
	assert.Equal(t, http.StatusBadRequest, get(t, h, "/debug/sidecarz").Code)
	assert.Equal(t, http.StatusNotFound, get(t, h, "/debug/sidecarz?proxyID=nope").Code)
	var ex translate.ScopeExplanation
	require.NoError(t, json.Unmarshal(get(t, h, "/debug/sidecarz?proxyID=p.ns").Body.Bytes(), &ex))
	assert.Equal(t, "sidecar|envoy|ns|", ex.Scope)
	assert.Equal(t, http.StatusBadRequest, get(t, h, "/debug/authorizationz").Code)
	assert.Equal(t, http.StatusNotFound, get(t, h, "/debug/authorizationz?proxyID=nope").Code)
	var az translate.AuthzExplanation
	require.NoError(t, json.Unmarshal(get(t, h, "/debug/authorizationz?proxyID=p.ns").Body.Bytes(), &az))
	assert.Equal(t, []translate.AuthzPolicyExplanation{{Namespace: "ns", Name: "allow", Action: "ALLOW", Rules: 1}}, az.Policies)
	var adsz struct {
		TotalClients int `json:"totalClients"`
	}
	require.NoError(t, json.Unmarshal(get(t, h, "/debug/adsz").Body.Bytes(), &adsz))
	assert.Equal(t, 1, adsz.TotalClients)
	assert.Equal(t, 1, fx.pushes, "a plain GET does not push")

	var reg []model.Service
	require.NoError(t, json.Unmarshal(get(t, h, "/debug/registryz").Body.Bytes(), &reg))
	require.Len(t, reg, 1)
	assert.Equal(t, "a.ns.svc.cluster.local", reg[0].Hostname)

	var sync []syncStatus
	require.NoError(t, json.Unmarshal(get(t, h, "/debug/syncz").Body.Bytes(), &sync))
	require.Len(t, sync, 1)
	assert.Equal(t, "sidecar", sync[0].ProxyType)
	assert.Equal(t, "2", sync[0].ClusterSent)
	assert.Equal(t, "1", sync[0].ClusterAcked)

	var cz struct {
		Configs []configView        `json:"configs"`
		Errors  []model.ObjectError `json:"errors"`
	}
	require.NoError(t, json.Unmarshal(get(t, h, "/debug/configz").Body.Bytes(), &cz))
	require.Len(t, cz.Configs, 1)
	assert.Equal(t, "spec.http", cz.Configs[0].Errors[0].Field, "errors are attached to their object")
	assert.Len(t, cz.Errors, 1)

	assert.Equal(t, http.StatusBadRequest, get(t, h, "/debug/config_dump").Code)
	assert.Equal(t, http.StatusNotFound, get(t, h, "/debug/config_dump?proxyID=nope").Code)
	assert.Equal(t, http.StatusOK, get(t, h, "/debug/config_dump?proxyID=p.ns").Code)
	assert.Equal(t, http.StatusOK, get(t, h, "/metrics").Code)
	assert.Contains(t, get(t, h, "/debug/list").Body.String(), "/debug/syncz")
}

// /debug/gatewayz answers for gateway proxies only: 400 without proxyID or
// for a sidecar, 404 for an unknown proxy, and the explanation as JSON.
func TestGatewayz(t *testing.T) {
	h := New(&fakeXDS{ready: true}, model.NewStore(), prometheus.NewRegistry())
	assert.Equal(t, http.StatusBadRequest, get(t, h, "/debug/gatewayz").Code)
	assert.Equal(t, http.StatusNotFound, get(t, h, "/debug/gatewayz?proxyID=nope").Code)
	rec := get(t, h, "/debug/gatewayz?proxyID=p.ns")
	assert.Equal(t, http.StatusBadRequest, rec.Code, "a sidecar is not a gateway")
	assert.Contains(t, rec.Body.String(), "not a gateway proxy")
	rec = get(t, h, "/debug/gatewayz?proxyID=gw.istio-system")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	var ex translate.GatewayExplanation
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &ex))
	assert.Equal(t, "router|envoy|istio-system|istio=egressgateway", ex.Scope)
	require.Len(t, ex.Ports, 1)
	assert.Equal(t, "http.8080", ex.Ports[0].RouteConfig)
	var paths []string
	require.NoError(t, json.Unmarshal(get(t, h, "/debug/list").Body.Bytes(), &paths))
	assert.Contains(t, paths, "/debug/gatewayz")
	assert.Contains(t, paths, "/debug/sidecarz")
}
