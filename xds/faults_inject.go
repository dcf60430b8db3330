//go:build meshd_faults

package xds

import (
	"log/slog"
	"os"
	"slices"

	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	"google.golang.org/protobuf/proto"

	"github.com/meshd/meshd/translate"
)

// MESHD_FAULT_DUPLICATE_DOMAIN=<host>: every route configuration with a
// virtual host answering to host gets that domain twice. ValidateAll
// accepts it; Envoy rejects the whole RouteConfiguration ("Only unique
// values for domains are permitted").
func init() {
	host := os.Getenv("MESHD_FAULT_DUPLICATE_DOMAIN")
	if host == "" {
		return
	}
	slog.Warn("test build: injecting a duplicate virtual-host domain into served routes", "host", host)
	outputFault = func(out *translate.Output) *translate.Output {
		routes := slices.Clone(out.Routes)
		changed := false
		for i, rc := range routes {
			for j, vh := range rc.GetVirtualHosts() {
				if slices.Contains(vh.GetDomains(), host) {
					bad := proto.Clone(rc).(*route.RouteConfiguration)
					bad.VirtualHosts[j].Domains = append(bad.VirtualHosts[j].Domains, host)
					routes[i], changed = bad, true
					break
				}
			}
		}
		if !changed {
			return out
		}
		return &translate.Output{Listeners: out.Listeners, Routes: routes, Clusters: out.Clusters, Endpoints: out.Endpoints,
			Secrets: out.Secrets}
	}
}
