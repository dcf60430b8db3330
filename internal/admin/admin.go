package admin

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/pprof"
	"sort"
	"strings"

	adminv3 "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/translate"
	"github.com/meshd/meshd/xds"
)

// XDS is the view of the ADS server the handlers read.
type XDS interface {
	Ready() bool
	Proxies() []xds.ProxyStatus
	ConfigDump(proxyID string) (*adminv3.ConfigDump, error)
	ConfigErrors() []model.ObjectError
	LastPush() xds.PushStatus
	ForcePush() bool
	ExplainScope(proxyID string) (translate.ScopeExplanation, error)
	ExplainGateway(proxyID string) (translate.GatewayExplanation, error)
	WhatIf(base *model.Snapshot, changes []model.Change, sel xds.WhatIfSelector) (*xds.WhatIfReport, error)
}

// Handler serves the admin endpoints.
type Handler struct {
	mux   *http.ServeMux
	xds   XDS
	store *model.Store
	paths []string
	// decode reads the change of /debug/whatif (EnableWhatIf); nil: the
	// endpoint answers 501.
	decode ChangeDecoder
}

// New returns the admin handler over the ADS server, the Store and the
// Prometheus registry.
func New(x XDS, store *model.Store, reg *prometheus.Registry) *Handler {
	h := &Handler{mux: http.NewServeMux(), xds: x, store: store}
	h.handle("/ready", h.ready)
	h.mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	h.paths = append(h.paths, "/metrics")
	h.handle("/debug/syncz", h.syncz)
	h.handle("/debug/adsz", h.adsz)
	h.handle("/debug/config_dump", h.configDump)
	h.handle("/debug/registryz", h.registryz)
	h.handle("/debug/endpointz", h.endpointz)
	h.handle("/debug/configz", h.configz)
	h.handle("/debug/push_status", h.pushStatus)
	h.handle("/debug/sidecarz", h.sidecarz)
	h.handle("/debug/gatewayz", h.gatewayz)
	h.handle("/debug/authorizationz", h.authorizationz)
	h.handle("/debug/whatif", h.whatIf)
	h.handle("/debug/list", h.list)
	h.mux.HandleFunc("/debug/pprof/", pprof.Index)
	h.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	h.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	h.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	h.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	h.paths = append(h.paths, "/debug/pprof/")
	sort.Strings(h.paths)
	return h
}

func (h *Handler) handle(path string, fn http.HandlerFunc) {
	h.mux.HandleFunc(path, fn)
	h.paths = append(h.paths, path)
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

func (h *Handler) ready(w http.ResponseWriter, _ *http.Request) {
	if !h.xds.Ready() {
		http.Error(w, "not ready: no config built yet", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

func (h *Handler) list(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, h.paths) }

func (h *Handler) pushStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, h.xds.LastPush())
}

// adsz lists the connected proxies; ?push=true first rebuilds and pushes
// every scope (only what changed is sent).
func (h *Handler) adsz(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("push") == "true" {
		if !h.xds.ForcePush() {
			writeError(w, http.StatusServiceUnavailable, "no config built yet")
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"pushed": true, "push": h.xds.LastPush()})
		return
	}
	proxies := h.xds.Proxies()
	writeJSON(w, http.StatusOK, map[string]any{"totalClients": len(proxies), "clients": proxies})
}

// sidecarz explains a proxy's scope: the Sidecar that applies and why, the
// outbound policy, the services, VirtualServices and DestinationRules it sees.
func (h *Handler) sidecarz(w http.ResponseWriter, r *http.Request) {
	if ex, ok := h.explainScope(w, r); ok {
		writeJSON(w, http.StatusOK, ex)
	}
}

// explainScope explains the scope of the request's proxyID, or writes why
// it cannot (400: no proxyID, 404: no such proxy).
func (h *Handler) explainScope(w http.ResponseWriter, r *http.Request) (translate.ScopeExplanation, bool) {
	id := r.URL.Query().Get("proxyID")
	if id == "" {
		writeError(w, http.StatusBadRequest, "missing proxyID query parameter (node ID or pod.namespace)")
		return translate.ScopeExplanation{}, false
	}
	ex, err := h.xds.ExplainScope(id)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return translate.ScopeExplanation{}, false
	}
	return ex, true
}

// authorizationz (istiod's name) lists the AuthorizationPolicies and
// RequestAuthentications that apply to an Envoy sidecar's or gateway's
// workload and the filters they became: the authorization part of the
// proxy's /debug/sidecarz.
func (h *Handler) authorizationz(w http.ResponseWriter, r *http.Request) {
	ex, ok := h.explainScope(w, r)
	if !ok {
		return
	}
	switch {
	case ex.Authorization != nil:
		writeJSON(w, http.StatusOK, ex.Authorization)
	case strings.HasPrefix(ex.Scope, "sidecar|envoy|"), strings.HasPrefix(ex.Scope, "router|envoy|"):
		writeJSON(w, http.StatusOK, translate.AuthzExplanation{Policies: []translate.AuthzPolicyExplanation{}})
	default:
		writeError(w, http.StatusBadRequest, "proxy "+r.URL.Query().Get("proxyID")+" is a proxyless gRPC client: meshd applies "+
			"AuthorizationPolicies to Envoy sidecars and gateways only")
	}
}

// gatewayz explains a gateway proxy's listeners and routes: the Gateways
// whose selector matches it (and those skipped), the servers merged per
// port with the listener and route configuration they produce, the
// VirtualServices bound per server host, and what is left out and why.
func (h *Handler) gatewayz(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("proxyID")
	if id == "" {
		writeError(w, http.StatusBadRequest, "missing proxyID query parameter (node ID or pod.namespace of a gateway proxy)")
		return
	}
	ex, err := h.xds.ExplainGateway(id)
	switch {
	case errors.Is(err, xds.ErrNotGateway):
		writeError(w, http.StatusBadRequest, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ex)
}

func (h *Handler) configDump(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("proxyID")
	if id == "" {
		writeError(w, http.StatusBadRequest, "missing proxyID query parameter (node ID or pod.namespace)")
		return
	}
	dump, err := h.xds.ConfigDump(id)
	if err != nil {
		writeError(w, http.StatusNotFound, err.Error())
		return
	}
	b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(dump)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
