package translate

import (
	"errors"
	"fmt"

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	"google.golang.org/protobuf/types/known/durationpb"
)

// validateCluster runs ValidateAll on a cluster and on the typed configs it
// carries (protocol options, transport socket).
func validateCluster(c *cluster.Cluster) error {
	errs := []error{validateMessage(c)}
	for _, a := range c.GetTypedExtensionProtocolOptions() {
		_, err := validateAny(a)
		errs = append(errs, err)
	}
	if a := c.GetTransportSocket().GetTypedConfig(); a != nil {
		if _, err := validateAny(a); err != nil {
			errs = append(errs, fmt.Errorf("transport socket: %w", err))
		}
	}
	return errors.Join(errs...)
}

// probeCluster is a minimal valid EDS cluster to apply a traffic policy to
// when checking the policy.
func probeCluster() *cluster.Cluster {
	return &cluster.Cluster{
		Name:                 "probe",
		ConnectTimeout:       durationpb.New(connectTimeout),
		ClusterDiscoveryType: &cluster.Cluster_Type{Type: cluster.Cluster_EDS},
		EdsClusterConfig:     &cluster.Cluster_EdsClusterConfig{EdsConfig: adsConfigSource(), ServiceName: "probe"},
	}
}
