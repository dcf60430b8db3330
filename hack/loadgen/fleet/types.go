package fleet

import "unique"

// intern returns b as a string shared by every proxy (the same names and
// versions recur across thousands of proxies).
func intern(b []byte) string { return unique.Make(string(b)).Value() }

// typeURLs are the four types' URLs by short name.
var typeURLs = map[string]string{
	"cds": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
	"eds": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
	"lds": "type.googleapis.com/envoy.config.listener.v3.Listener",
	"rds": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
}

// shortType is the short name of type URL url, "" if not one of the four.
func shortType(url string) string {
	for s, u := range typeURLs {
		if u == url {
			return s
		}
	}
	return ""
}
