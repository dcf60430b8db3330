// Package kube is meshd's Kubernetes provider: client-go shared informers for
// Namespaces, Services, EndpointSlices and Pods, and Istio's client-go
// informers for VirtualService, DestinationRule, Gateway, ServiceEntry and
// Sidecar (networking.istio.io/v1), PeerAuthentication, AuthorizationPolicy
// and RequestAuthentication (security.istio.io/v1), plus the istio ConfigMap in the root
// namespace for MeshConfig, and Secrets holding TLS credentials (gateway
// credentialName; istiod's field selector leaves out Helm releases and
// service account tokens, other Secrets are trimmed to their name on
// arrival). Objects are converted by package convert — the same code the
// file provider uses — and handed to the model.Store.
//
// Behaviour an operator relies on:
//   - nothing reaches the Store before every informer has synced; the first
//     Apply holds the complete initial state;
//   - informers ride out API-server outages: watch errors never turn into
//     deletions, so the last config keeps being served, and the reflectors
//     relist and catch up when the API server returns;
//   - discoverySelectors (MeshConfig, OR'd label selectors on namespaces)
//     limit which namespaces' objects are used; a namespace entering or
//     leaving the selection adds or removes its objects;
//   - an object that cannot be converted is reported (log, the Store's error
//     list behind meshd_config_errors and /debug/configz, and a Warning Event
//     on the object) and skipped; its last good version stays in service.
package kube
