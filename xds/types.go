package xds

import (
	resourcev3 "github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// typeURLs lists the xDS types meshd serves, in push order (CDS, EDS, SDS,
// LDS, RDS).
var typeURLs = []string{resourcev3.ClusterType, resourcev3.EndpointType, resourcev3.SecretType, resourcev3.ListenerType,
	resourcev3.RouteType}

// ShortType returns istiod's short name of an xDS type URL (cds, eds, lds,
// rds, sds), used as the "type" metric label and in /debug/syncz.
func ShortType(typeURL string) string {
	switch typeURL {
	case resourcev3.SecretType:
		return "sds"
	case resourcev3.ClusterType:
		return "cds"
	case resourcev3.EndpointType:
		return "eds"
	case resourcev3.ListenerType:
		return "lds"
	case resourcev3.RouteType:
		return "rds"
	}
	return "other"
}
