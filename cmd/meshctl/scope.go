package main

import (
	"net/url"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// scopeInfo is what fills istioctl's DESTINATION RULE and VIRTUAL SERVICE
// columns. istiod writes them into each cluster's and route's
// filter_metadata ("istio": {"config": "/apis/networking.istio.io/..."});
// meshd does not, so for a config read from meshd they come from
// /debug/sidecarz (the DestinationRule meshd chose per host, and the
// VirtualServices a sidecar sees) and, for a gateway, /debug/gatewayz
// (the VirtualServices bound to each server host).
type scopeInfo struct {
	// drByHost is "name.namespace" of the DestinationRule per host.
	drByHost map[string]string
	vs       []vsInfo
	// gatewayVS is, by route configuration and server host ("http.8080
	// *"), the VirtualServices bound there (name.namespace, by commas).
	gatewayVS map[string]string
}

// vsInfo is a VirtualService a proxy sees and the hosts it routes.
type vsInfo struct {
	name  string // name.namespace, as istioctl prints it
	hosts []string
}

// loadScope reads /debug/sidecarz (and, for a gateway, /debug/gatewayz)
// for a config read from meshd; it returns an empty scopeInfo otherwise,
// or if meshd cannot explain the scope (the columns then stay blank, as
// for istioctl without metadata).
func loadScope(src source) scopeInfo {
	si := scopeInfo{drByHost: map[string]string{}, gatewayVS: map[string]string{}}
	if !src.fromMeshd() {
		return si
	}
	var ex struct {
		Scope           string `json:"scope"`
		VirtualServices []struct {
			Namespace, Name string
			Hosts           []string
		} `json:"virtualServices"`
		DestinationRules []struct {
			Host, Namespace, Name string
		} `json:"destinationRules"`
	}
	if err := src.meshd.getJSON("/debug/sidecarz?proxyID="+url.QueryEscape(src.proxy), &ex); err != nil {
		return si
	}
	for _, dr := range ex.DestinationRules {
		si.drByHost[dr.Host] = dr.Name + "." + dr.Namespace
	}
	for _, vs := range ex.VirtualServices {
		si.vs = append(si.vs, vsInfo{name: vs.Name + "." + vs.Namespace, hosts: vs.Hosts})
	}
	if strings.HasPrefix(ex.Scope, "router|") {
		si.loadGateway(src)
	}
	return si
}

// loadGateway reads the VirtualServices bound to each server host of a
// gateway from /debug/gatewayz.
func (si scopeInfo) loadGateway(src source) {
	var gw struct {
		Ports []struct {
			RouteConfig string `json:"routeConfig"`
			Servers     []struct {
				RouteConfig string `json:"routeConfig"`
				Hosts       []struct {
					Host            string `json:"host"`
					VirtualServices []struct {
						Namespace, Name string
					} `json:"virtualServices"`
				} `json:"hosts"`
			} `json:"servers"`
		} `json:"ports"`
	}
	if err := src.meshd.getJSON("/debug/gatewayz?proxyID="+url.QueryEscape(src.proxy), &gw); err != nil {
		return
	}
	for _, p := range gw.Ports {
		for _, s := range p.Servers {
			rc := s.RouteConfig // an HTTPS server's own, else the port's
			if rc == "" {
				rc = p.RouteConfig
			}
			for _, h := range s.Hosts {
				var names []string
				for _, vs := range h.VirtualServices {
					names = append(names, vs.Name+"."+vs.Namespace)
				}
				if len(names) > 0 {
					si.gatewayVS[rc+" "+h.Host] = strings.Join(names, ",")
				}
			}
		}
	}
}

// virtualService returns the VirtualService that routes host in the
// route configuration rc, "" if none.
func (si scopeInfo) virtualService(rc, host string) string {
	if vs := si.gatewayVS[rc+" "+host]; vs != "" {
		return vs
	}
	for _, vs := range si.vs {
		for _, h := range vs.hosts {
			if h == host || (strings.HasPrefix(h, "*") && strings.HasSuffix(host, h[1:])) {
				return vs.name
			}
		}
	}
	return ""
}

// describeManagement is istioctl's: the Istio config named in a
// resource's filter_metadata, as name.namespace ("" if none).
func describeManagement(md *corev3.Metadata) string {
	cfg := md.GetFilterMetadata()["istio"].GetFields()["config"].GetStringValue()
	if cfg == "" {
		return ""
	}
	if !strings.HasPrefix(cfg, "/apis/networking.istio.io/") {
		return "<unknown>"
	}
	p := strings.Split(cfg, "/")
	if len(p) != 8 {
		return ""
	}
	return p[7] + "." + p[5]
}
