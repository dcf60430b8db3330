package admin

import (
	"encoding/json"
	"net/http"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/xds"
)

// syncStatus is istiod's /debug/syncz entry (nonces per type), plus meshd's
// per-type detail with versions and NACKs.
type syncStatus struct {
	ProxyID       string                    `json:"proxy"`
	ProxyType     string                    `json:"proxy_type"`
	IstioVersion  string                    `json:"istio_version"`
	ClusterSent   string                    `json:"cluster_sent,omitempty"`
	ClusterAcked  string                    `json:"cluster_acked,omitempty"`
	ListenerSent  string                    `json:"listener_sent,omitempty"`
	ListenerAcked string                    `json:"listener_acked,omitempty"`
	RouteSent     string                    `json:"route_sent,omitempty"`
	RouteAcked    string                    `json:"route_acked,omitempty"`
	EndpointSent  string                    `json:"endpoint_sent,omitempty"`
	EndpointAcked string                    `json:"endpoint_acked,omitempty"`
	Types         map[string]xds.TypeStatus `json:"types"`
}

func (h *Handler) syncz(w http.ResponseWriter, _ *http.Request) {
	var out []syncStatus
	for _, p := range h.xds.Proxies() {
		s := syncStatus{ProxyID: p.NodeID, ProxyType: typeOf(p.NodeID), IstioVersion: "meshd", Types: p.Types}
		s.ClusterSent, s.ClusterAcked = p.Types["cds"].SentNonce, p.Types["cds"].AckedNonce
		s.ListenerSent, s.ListenerAcked = p.Types["lds"].SentNonce, p.Types["lds"].AckedNonce
		s.RouteSent, s.RouteAcked = p.Types["rds"].SentNonce, p.Types["rds"].AckedNonce
		s.EndpointSent, s.EndpointAcked = p.Types["eds"].SentNonce, p.Types["eds"].AckedNonce
		out = append(out, s)
	}
	if out == nil {
		out = []syncStatus{}
	}
	writeJSON(w, http.StatusOK, out)
}

func typeOf(nodeID string) string {
	for i := 0; i < len(nodeID); i++ {
		if nodeID[i] == '~' {
			return nodeID[:i]
		}
	}
	return ""
}

func (h *Handler) registryz(w http.ResponseWriter, _ *http.Request) {
	svcs := h.store.Current().Services()
	if svcs == nil {
		svcs = []*model.Service{}
	}
	writeJSON(w, http.StatusOK, svcs)
}

type endpointsView struct {
	Hostname  string           `json:"hostname"`
	Namespace string           `json:"namespace"`
	Endpoints []model.Endpoint `json:"endpoints"`
}

func (h *Handler) endpointz(w http.ResponseWriter, _ *http.Request) {
	snap := h.store.Current()
	out := []endpointsView{}
	for _, svc := range snap.Services() {
		out = append(out, endpointsView{svc.Hostname, svc.Namespace, snap.Endpoints(svc.Hostname, svc.Namespace)})
	}
	writeJSON(w, http.StatusOK, out)
}

type configView struct {
	Kind      model.Kind          `json:"kind"`
	Namespace string              `json:"namespace"`
	Name      string              `json:"name"`
	Source    string              `json:"source,omitempty"`
	Spec      json.RawMessage     `json:"spec"`
	Errors    []model.ObjectError `json:"errors,omitempty"`
}

// configz lists every Istio config object with the errors reported for it,
// and, separately, errors of objects that never converted (bad YAML).
func (h *Handler) configz(w http.ResponseWriter, _ *http.Request) {
	snap := h.store.Current()
	errs := h.xds.ConfigErrors()
	byObj := map[string][]model.ObjectError{}
	for _, e := range errs {
		k := string(e.Kind) + "/" + e.Namespace + "/" + e.Name
		byObj[k] = append(byObj[k], e)
	}
	out := struct {
		Configs []configView        `json:"configs"`
		Errors  []model.ObjectError `json:"errors"`
	}{Configs: []configView{}, Errors: errs}
	if out.Errors == nil {
		out.Errors = []model.ObjectError{}
	}
	for _, k := range model.ConfigKinds {
		for _, c := range snap.Configs(k) {
			spec, _ := protojson.Marshal(c.Spec)
			out.Configs = append(out.Configs, configView{
				Kind: c.Kind, Namespace: c.Namespace, Name: c.Name, Source: c.Source,
				Spec: spec, Errors: byObj[string(c.Kind)+"/"+c.Key()],
			})
		}
	}
	writeJSON(w, http.StatusOK, out)
}
