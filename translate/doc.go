// Package translate turns a model.Snapshot and a proxy scope into Envoy
// resources: listeners, routes, clusters and endpoints (ClusterLoadAssignments).
//
// It is pure: no I/O, no clocks, no Kubernetes types. Output is sorted by
// resource name so that serialised bytes, and therefore versions, are identical
// across restarts and replicas. Naming follows istiod exactly
// (outbound|8080||a.ns.svc.cluster.local, 0.0.0.0_8080, route 8080).
//
// The work is split in two: NewIndex does the mesh-wide part once per Snapshot
// (choosing and validating VirtualServices and DestinationRules, building every
// ClusterLoadAssignment), and Build does the per-scope part. One file per
// feature: listeners.go, routes.go, virtualservice.go, clusters.go,
// endpoints.go, grpc.go, validate.go.
package translate
