package inject

import (
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// NativeSidecarMinMinor is the Kubernetes minor version from which istiod
// (ENABLE_NATIVE_SIDECARS=auto) uses native sidecars: the feature is
// stable in 1.33.
const NativeSidecarMinMinor = 33

// NativeSidecarsSupported is istiod's auto detection: the pod's node's
// kubelet is 1.33 or later when the pod names a known node; else every
// node's is (no nodes at all counts as yes, as istiod).
func NativeSidecarsSupported(nodes []*corev1.Node, nodeName string) bool {
	if nodeName != "" {
		for _, n := range nodes {
			if n.Name == nodeName {
				return kubeletSupports(n)
			}
		}
	}
	for _, n := range nodes {
		if !kubeletSupports(n) {
			return false
		}
	}
	return true
}

// kubeletSupports reads a node's kubelet version ("v1.33.2", "v1.34.0-eks-1").
func kubeletSupports(n *corev1.Node) bool {
	v := strings.TrimPrefix(n.Status.NodeInfo.KubeletVersion, "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(strings.TrimRightFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' }))
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 1 || minor >= NativeSidecarMinMinor
}
