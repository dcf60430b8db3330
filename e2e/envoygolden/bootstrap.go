package envoygolden

import (
	"fmt"
	"net"
	"strings"
)

// Bootstrap is the YAML bootstrap of a case's Envoy: the node, the admin
// interface on 127.0.0.1:adminPort, and ADS (gRPC, HTTP/2) to the server
// at adsAddr through the static cluster xds-grpc, for CDS and LDS. The
// static cluster sds-grpc points at the same server: it stands in for the
// Istio agent's SDS socket that ISTIO_MUTUAL clusters name.
func Bootstrap(nodeID string, adminPort int, adsAddr string) ([]byte, error) {
	host, port, err := net.SplitHostPort(adsAddr)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(nodeID, "~")
	if len(parts) != 4 {
		return nil, fmt.Errorf("node ID %q: want type~ip~pod.ns~ns.svc.cluster.local", nodeID)
	}
	return []byte(fmt.Sprintf(bootstrapTemplate, nodeID, parts[2], adminPort,
		grpcCluster("xds-grpc", host, port), grpcCluster("sds-grpc", host, port))), nil
}

const bootstrapTemplate = `node:
  id: %q
  cluster: %q
admin:
  address:
    socket_address: {address: 127.0.0.1, port_value: %d}
dynamic_resources:
  ads_config:
    api_type: GRPC
    transport_api_version: V3
    set_node_on_first_message_only: true
    grpc_services:
    - envoy_grpc: {cluster_name: xds-grpc}
  cds_config: {ads: {}, resource_api_version: V3}
  lds_config: {ads: {}, resource_api_version: V3}
static_resources:
  clusters:
%s
%s
`

func grpcCluster(name, host, port string) string {
	return fmt.Sprintf(`  - name: %s
    type: STATIC
    connect_timeout: 1s
    typed_extension_protocol_options:
      envoy.extensions.upstreams.http.v3.HttpProtocolOptions:
        "@type": type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions
        explicit_http_config: {http2_protocol_options: {}}
    load_assignment:
      cluster_name: %s
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {address: %s, port_value: %s}`, name, name, host, port)
}
