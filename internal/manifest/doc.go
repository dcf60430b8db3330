// Package manifest generates the in-cluster install of meshd in istiod's
// place (`meshd manifest`): the ServiceAccount and exactly the RBAC meshd
// uses, the mesh ConfigMap, the Deployment, its PodDisruptionBudget, the
// istiod Service existing sidecars dial, and the sidecar injector's
// MutatingWebhookConfiguration, as ordered Kubernetes objects and as YAML
// for `kubectl apply -f -`. It is a pure function of Options: no I/O.
package manifest
