package convert

import (
	"regexp"
	"strings"

	networking "istio.io/api/networking/v1"
)

var (
	// dns1123Label is a Kubernetes namespace name.
	dns1123Label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// dnsName is a host name, optionally with a leading "*." wildcard, or "*".
	dnsName = regexp.MustCompile(`^(\*|(\*\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*\.?)$`)
)

// validateSidecar checks ingress ports and egress hosts ("namespace/dnsName").
// At most one egress listener may omit its port, and it must come last.
func validateSidecar(sc *networking.Sidecar) *fieldError {
	for i, in := range sc.GetIngress() {
		p := at("spec.ingress", i)
		if in.GetPort() == nil {
			return errf(p+".port", "port is required")
		}
		if n := in.GetPort().GetNumber(); n < 1 || n > 65535 {
			return errf(p+".port.number", "port %d is out of range 1-65535", n)
		}
	}
	egress := sc.GetEgress()
	for i, eg := range egress {
		p := at("spec.egress", i)
		if eg.GetPort() == nil && i != len(egress)-1 {
			return errf(p+".port", "only the last egress listener may omit its port")
		}
		if n := eg.GetPort().GetNumber(); eg.GetPort() != nil && (n < 1 || n > 65535) {
			return errf(p+".port.number", "port %d is out of range 1-65535", n)
		}
		if len(eg.GetHosts()) == 0 {
			return errf(p+".hosts", "at least one host is required")
		}
		for j, h := range eg.GetHosts() {
			if fe := validateSidecarHost(h, at(p+".hosts", j)); fe != nil {
				return fe
			}
		}
	}
	return nil
}

func validateSidecarHost(h, p string) *fieldError {
	ns, name, ok := strings.Cut(h, "/")
	if !ok {
		return errf(p, "host %q must have the form namespace/dnsName (namespace is a name, \".\", \"*\" or \"~\")", h)
	}
	switch {
	case ns == "." || ns == "*" || ns == "~":
	case !dns1123Label.MatchString(ns) || len(ns) > 63:
		return errf(p, "host %q: namespace %q must be a namespace name, \".\", \"*\" or \"~\"", h, ns)
	}
	if name == "" || len(name) > 253 || !dnsName.MatchString(name) {
		return errf(p, "host %q: %q is not a DNS name (wildcards only as a leading \"*\" or \"*.\")", h, name)
	}
	return nil
}
