package translate_test

import (
	"testing"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// grpc-go matches the name it dialled ("<host>:<port>", the listener's
// name) against the virtual host domains as it is, ports included: every
// API listener's route must carry its name. Its clusters keep grpc-go's
// default balancer (ROUND_ROBIN, lb_policy unset, as istiod's grpcgen),
// while Envoy's default to LEAST_REQUEST.
func TestGRPCListenerNamesAreDomains(t *testing.T) {
	for _, scope := range []string{"sidecar|grpc|backend", "sidecar|grpc|transfer"} {
		out, _ := translateYAML(t, scope, backend, "")
		require.NotEmpty(t, out.Listeners, scope)
		domains := map[string]map[string]bool{}
		for _, rc := range out.Routes {
			domains[rc.Name] = map[string]bool{}
			for _, vh := range rc.GetVirtualHosts() {
				for _, d := range vh.GetDomains() {
					domains[rc.Name][d] = true
				}
			}
		}
		for _, l := range out.Listeners {
			m := &hcm.HttpConnectionManager{}
			require.NoError(t, l.GetApiListener().GetApiListener().UnmarshalTo(m), l.Name)
			rds := m.GetRds().GetRouteConfigName()
			assert.True(t, domains[rds][l.Name], "%s: route %s lacks domain %s", scope, rds, l.Name)
		}
		for _, c := range out.Clusters {
			assert.Equal(t, cluster.Cluster_ROUND_ROBIN, c.GetLbPolicy(), "%s: %s", scope, c.Name)
		}
	}
	out, _ := translateYAML(t, "sidecar|envoy|transfer", backend, "")
	assert.Equal(t, cluster.Cluster_LEAST_REQUEST, clusterNamed(t, out, "outbound|8080||core.backend.svc.cluster.local").GetLbPolicy())
}
