// Package file is a discovery provider that reads a directory of Kubernetes
// YAML manifests (Services, EndpointSlices, Pods, Namespaces, the Istio
// networking kinds, and Secrets holding TLS credentials — other Secrets
// are ignored) and keeps a model.Store in step with it.
//
// The directory is polled rather than watched: every Interval the provider
// stats the *.yaml and *.yml files under Dir (re-reading a file only when its
// size or modification time changed, or when that time is too recent to be
// trusted) and, if anything changed, rebuilds the full desired state and
// applies the difference to the Store in one Apply call.
//
// Every problem is reported per object as a model.ObjectError whose Source is
// "<path relative to Dir>#<document number>": a broken document never stops
// the others, and a broken edit of a good object keeps the good version in
// service (Store semantics) until it is fixed.
//
// DecodeChanges decodes one change file the same way, for meshd's
// /debug/whatif (meshctl what-if), reading the mesh ConfigMap too.
package file
