package convert

import (
	"maps"
	"net"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// validateServiceEntry checks hosts, ports and endpoints against the
// resolution mode, following istiod's rules.
func validateServiceEntry(se *networking.ServiceEntry) *fieldError {
	if len(se.GetHosts()) == 0 {
		return errf("spec.hosts", "at least one host is required")
	}
	for i, h := range se.GetHosts() {
		switch h {
		case "":
			return errf(at("spec.hosts", i), "host must not be empty")
		case "*":
			return errf(at("spec.hosts", i), `host "*" alone is not allowed; name the hosts`)
		}
	}
	if fe := validateServiceEntryPorts(se.GetPorts()); fe != nil {
		return fe
	}
	if se.GetWorkloadSelector() != nil && len(se.GetEndpoints()) > 0 {
		return errf("spec.workloadSelector", "workloadSelector and endpoints cannot both be set")
	}
	return validateServiceEntryEndpoints(se)
}

func validateServiceEntryPorts(ports []*networking.ServicePort) *fieldError {
	seen := map[uint32]int{}
	for i, pt := range ports {
		p := at("spec.ports", i)
		if n := pt.GetNumber(); n < 1 || n > 65535 {
			return errf(p+".number", "port %d is out of range 1-65535", n)
		}
		if first, dup := seen[pt.GetNumber()]; dup {
			return errf(p+".number", "duplicate port %d (also spec.ports[%d])", pt.GetNumber(), first)
		}
		seen[pt.GetNumber()] = i
		if pt.GetName() == "" {
			return errf(p+".name", "port name is required")
		}
		if pr := pt.GetProtocol(); pr != "" && model.ParseProtocol(pr) == model.ProtocolUnsupported {
			return errf(p+".protocol", "unsupported protocol %q", pr)
		}
	}
	return nil
}

func validateServiceEntryEndpoints(se *networking.ServiceEntry) *fieldError {
	res := se.GetResolution()
	if res == networking.ServiceEntry_NONE && len(se.GetEndpoints()) > 0 {
		return errf("spec.endpoints", "endpoints cannot be set with resolution NONE")
	}
	if (res == networking.ServiceEntry_DNS || res == networking.ServiceEntry_DNS_ROUND_ROBIN) && len(se.GetEndpoints()) == 0 {
		for i, h := range se.GetHosts() {
			if strings.HasPrefix(h, "*") {
				return errf(at("spec.hosts", i), "wildcard host %q cannot be resolved by DNS; add endpoints or use resolution NONE", h)
			}
		}
	}
	for i, ep := range se.GetEndpoints() {
		p := at("spec.endpoints", i)
		addr := ep.GetAddress()
		switch {
		case addr == "":
			return errf(p+".address", "address is required")
		case res == networking.ServiceEntry_STATIC && net.ParseIP(addr) == nil && !strings.HasPrefix(addr, "unix://"):
			return errf(p+".address", "address %q must be an IP address (or unix:// socket) with resolution STATIC", addr)
		}
		for _, name := range slices.Sorted(maps.Keys(ep.GetPorts())) {
			if n := ep.GetPorts()[name]; n < 1 || n > 65535 {
				return errf(key(p+".ports", name), "port %d is out of range 1-65535", n)
			}
		}
	}
	return nil
}
