package convert

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	security "istio.io/api/security/v1beta1"
)

// validatePeerAuthentication applies istiod's ValidatePeerAuthentication
// (pkg/config/validation) and the CRD's rules, naming the field:
//   - portLevelMtls needs a selector with labels: a mesh-wide or
//     namespace-wide policy cannot set port-level mTLS (istiod: "mesh/namespace
//     peer authentication cannot have port level mTLS"; the CRD:
//     "portLevelMtls requires selector");
//   - port-level ports are 1-65535;
//   - modes are UNSET, DISABLE, PERMISSIVE or STRICT (a number outside the
//     enum decodes but means nothing);
//   - selector labels have a key and no wildcard (istiod's
//     validateWorkloadSelector).
//
// A selector without labels is accepted, as istiod only warns: the policy
// is namespace-wide (or mesh-wide in the root namespace). What depends on
// the root namespace (a selector there) is reported by translate, which
// knows the MeshConfig.
func validatePeerAuthentication(pa *security.PeerAuthentication) *fieldError {
	if fe := validatePolicySelector(pa.GetSelector().GetMatchLabels(), "spec.selector.matchLabels"); fe != nil {
		return fe
	}
	if fe := validateMTLSMode(pa.GetMtls().GetMode(), "spec.mtls.mode"); fe != nil {
		return fe
	}
	ports := pa.GetPortLevelMtls()
	if len(ports) > 0 && len(pa.GetSelector().GetMatchLabels()) == 0 {
		return errf("spec.portLevelMtls", "portLevelMtls requires a selector with labels: "+
			"a mesh-wide or namespace-wide PeerAuthentication cannot set port-level mTLS")
	}
	for _, port := range slices.Sorted(maps.Keys(ports)) {
		p := key("spec.portLevelMtls", fmt.Sprint(port))
		if port < 1 || port > 65535 {
			return errf(p, "port %d is out of range 1-65535", port)
		}
		if fe := validateMTLSMode(ports[port].GetMode(), p+".mode"); fe != nil {
			return fe
		}
	}
	return nil
}

// validateMTLSMode rejects a mode outside PeerAuthentication's enum.
func validateMTLSMode(m security.PeerAuthentication_MutualTLS_Mode, field string) *fieldError {
	if _, ok := security.PeerAuthentication_MutualTLS_Mode_name[int32(m)]; !ok {
		return errf(field, "unknown mode %d (want UNSET, DISABLE, PERMISSIVE or STRICT)", int32(m))
	}
	return nil
}

// validatePolicySelector checks a security policy's matchLabels as
// istiod's validateWorkloadSelector: no empty key, no wildcard.
func validatePolicySelector(labels map[string]string, path string) *fieldError {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		if k == "" {
			return errf(path, "empty key is not supported in selector: %q", k+"="+v)
		}
		if strings.Contains(k, "*") || strings.Contains(v, "*") {
			return errf(key(path, k), "wildcard is not supported in selector: %q", k+"="+v)
		}
	}
	return nil
}
