// Package model is meshd's Kubernetes-free mesh model: services, ports,
// endpoints, workloads, namespaces, proxies, Istio config objects (as
// istio.io/api protos) and TLS credentials (Secret), gathered into immutable
// Snapshots published by a Store.
//
// Discovery providers convert their sources into Changes and hand them to the
// Store; every later stage reads Snapshots and never mutates them. This package
// must not import k8s.io/* or sigs.k8s.io/*.
package model
