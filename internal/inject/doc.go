// Package inject is meshd's sidecar injection webhook, as istiod's
// /inject: Inject, a pure function of a pod, its namespace's labels and
// the mesh settings, computes the JSONPatch that adds an Istio-compatible
// istio-proxy (and istio-init, or istio-validation under Istio's CNI) to
// the pod, or the reason it is skipped, or the message it is rejected
// with; Handler serves it as an admission/v1 AdmissionReview endpoint; and
// CABundlePatcher keeps the caBundle of the MutatingWebhookConfiguration
// that routes pods to it set to the mesh root, as istiod's webhook patcher.
//
// Inject is golden-tested (testdata/<case>/{pod.yaml, namespace.yaml,
// settings.yaml, injected.yaml | skipped.txt | rejected.txt}); regenerate
// with go test ./internal/inject -update.
package inject
