package bootstrap

import (
	"fmt"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// InterceptionRedirect is the INTERCEPTION_MODE of an iptables REDIRECT
// sidecar, the injector's default (ProxyConfig.InterceptionMode).
const InterceptionRedirect = "REDIRECT"

// EffectiveNodeID returns the node ID the bootstrap carries: --node-id when
// given, else istiod's <type>~<ip>~<pod>.<ns>~<ns>.svc.<domain> as
// pilot-agent builds it (Proxy.ServiceNode: only the first IP; all of them
// go in INSTANCE_IPS).
func (o *Options) EffectiveNodeID() string {
	if o.NodeID != "" {
		return o.NodeID
	}
	return strings.Join([]string{
		string(o.Type),
		o.IPs[0],
		o.PodName + "." + o.Namespace,
		o.Namespace + ".svc." + o.Domain,
	}, "~")
}

// serviceCluster is node.cluster as pilot-agent computes it with the default
// tracing service name (pkg/bootstrap/config.go, serviceClusterOrDefault):
// <app>.<ns> from the first of the labels app, app.kubernetes.io/name,
// service.istio.io/canonical-name, else <workload>.<ns>.
func (o *Options) serviceCluster() string {
	for _, l := range []string{"app", "app.kubernetes.io/name", "service.istio.io/canonical-name"} {
		if v := o.Labels[l]; v != "" {
			return v + "." + o.Namespace
		}
	}
	return o.WorkloadName + "." + o.Namespace
}

// metadata returns the node metadata under pilot-agent's keys (the json tags
// of istio's pkg/model NodeMetadata and BootstrapNodeMetadata). Values are
// strings except LABELS (a map) and the two port numbers, as there.
func (o *Options) metadata() (*structpb.Struct, error) {
	m := map[string]any{
		"NAMESPACE":             o.Namespace,
		"NAME":                  o.PodName,
		"CLUSTER_ID":            o.ClusterID,
		"ISTIO_VERSION":         o.IstioVersion,
		"WORKLOAD_NAME":         o.WorkloadName,
		"SERVICE_ACCOUNT":       o.ServiceAccount,
		"MESH_ID":               o.MeshID,
		"INSTANCE_IPS":          strings.Join(o.IPs, ","), // istio's StringList marshals joined
		"INTERCEPTION_MODE":     InterceptionRedirect,
		"ENVOY_STATUS_PORT":     int(o.ReadinessPort),
		"ENVOY_PROMETHEUS_PORT": int(o.StatsPort),
	}
	if len(o.Labels) > 0 {
		labels := make(map[string]any, len(o.Labels))
		for k, v := range o.Labels {
			labels[k] = v
		}
		m["LABELS"] = labels
	}
	if o.Generator != "" {
		m["GENERATOR"] = o.Generator
	}
	s, err := structpb.NewStruct(m)
	if err != nil {
		return nil, fmt.Errorf("building node metadata: %w", err)
	}
	return s, nil
}

// locality splits --locality into Envoy's locality, nil when not given.
func (o *Options) locality() *core.Locality {
	if o.Locality == "" {
		return nil
	}
	parts := append(strings.Split(o.Locality, "/"), "", "")
	return &core.Locality{Region: parts[0], Zone: parts[1], SubZone: parts[2]}
}

// node returns the bootstrap's node.
func (o *Options) node() (*core.Node, error) {
	md, err := o.metadata()
	if err != nil {
		return nil, err
	}
	return &core.Node{Id: o.EffectiveNodeID(), Cluster: o.serviceCluster(), Metadata: md, Locality: o.locality()}, nil
}
