package inject

import (
	corev1 "k8s.io/api/core/v1"
)

// ignoredNamespaces are never injected, as istiod's IgnoredNamespaces.
var ignoredNamespaces = map[string]bool{
	"kube-system": true, "kube-public": true, "kube-node-lease": true, "local-path-storage": true,
}

// selected reports whether pod is to be injected by the control plane of
// revision rev, and why not: istiod's own checks (hostNetwork, system
// namespaces, sidecar.istio.io/inject=false), then, when nsLabels is not
// nil, the MutatingWebhookConfiguration's selectors on the namespace's
// labels (istio's chart: istio-injection=enabled, or istio.io/rev=REV on
// the namespace, or on the pod in a namespace with neither label, or
// sidecar.istio.io/inject=true on the pod there). The webhook passes nil:
// the API server has applied those selectors already, to the namespace's
// current labels.
func selected(pod *corev1.Pod, nsLabels map[string]string, rev string) (bool, string) {
	if pod.Spec.HostNetwork {
		return false, "hostNetwork pod: iptables would change the node's network"
	}
	if ignoredNamespaces[pod.Namespace] {
		return false, "namespace " + pod.Namespace + " is never injected"
	}
	podInject := pod.Annotations[AnnoInject]
	if v, ok := pod.Labels[LabelInject]; ok {
		podInject = v // the label wins over the older annotation, as istio
	}
	if podInject == "false" {
		return false, LabelInject + "=false"
	}
	if nsLabels == nil {
		return true, ""
	}
	myRev := rev
	if myRev == "" {
		myRev = "default"
	}
	nsInjection, hasNSInjection := nsLabels[LabelNSInjection]
	nsRev, hasNSRev := nsLabels[LabelRev]
	podRev, hasPodRev := pod.Labels[LabelRev]
	switch {
	case hasNSInjection:
		if nsInjection != "enabled" {
			return false, "namespace label " + LabelNSInjection + "=" + nsInjection
		}
		if rev != "" {
			return false, "namespace label istio-injection=enabled selects the default revision, not " + rev
		}
		return true, ""
	case hasNSRev:
		if nsRev != myRev {
			return false, "namespace label istio.io/rev=" + nsRev + " selects another revision"
		}
		return true, ""
	case hasPodRev:
		if podRev != myRev {
			return false, "pod label istio.io/rev=" + podRev + " selects another revision"
		}
		return true, ""
	case podInject == "true" && rev == "":
		return true, ""
	}
	return false, "neither the namespace (istio-injection=enabled, istio.io/rev) nor the pod (istio.io/rev, sidecar.istio.io/inject=true) asks for injection"
}

// alreadyInjected reports whether pod has a sidecar already: the status
// annotation, or an istio-proxy container.
func alreadyInjected(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[AnnoStatus]
	return ok
}

// findContainer returns the index of the container named name, or -1.
func findContainer(cs []corev1.Container, name string) int {
	for i := range cs {
		if cs[i].Name == name {
			return i
		}
	}
	return -1
}
