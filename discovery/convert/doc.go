// Package convert turns typed Kubernetes objects (core/v1 Services, Pods,
// Namespaces and TLS Secrets, discovery/v1 EndpointSlices) and Istio
// networking objects (istio.io/client-go networking/v1) into internal/model
// values, and validates the Istio objects and the Secrets' credentials.
//
// Every function is pure: it reads its argument, never mutates it, and
// returns either a model value or a *model.ObjectError naming the object and
// the offending field (a JSON path such as "spec.http[0].route[1].weight").
// Providers (the YAML directory provider, a Kubernetes watcher) set the
// error's Source and hand the result to the Store.
//
// The *model.Config values returned for Istio kinds hold a pointer to the
// object's Spec (an istio.io/api proto), so the caller must not mutate the
// object afterwards; informer caches and freshly decoded objects satisfy this.
// Config.Source is left for the caller to set.
//
// Checks that need the registry, such as a VirtualService routing to a host
// that does not exist, belong to the translator, not here.
package convert
