package inject

import (
	"fmt"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"k8s.io/apimachinery/pkg/api/resource"
)

// Pod labels and annotations meshd reads or writes, Istio's names.
const (
	LabelInject       = "sidecar.istio.io/inject"
	LabelRev          = "istio.io/rev"
	LabelNSInjection  = "istio-injection"
	LabelTLSMode      = "security.istio.io/tlsMode"
	LabelCanonicalNm  = "service.istio.io/canonical-name"
	LabelCanonicalRev = "service.istio.io/canonical-revision"
	LabelWorkloadName = "service.istio.io/workload-name"

	AnnoStatus                = "sidecar.istio.io/status"
	AnnoInject                = "sidecar.istio.io/inject"
	AnnoProxyCPU              = "sidecar.istio.io/proxyCPU"
	AnnoProxyMemory           = "sidecar.istio.io/proxyMemory"
	AnnoProxyCPULimit         = "sidecar.istio.io/proxyCPULimit"
	AnnoProxyMemoryLimit      = "sidecar.istio.io/proxyMemoryLimit"
	AnnoProxyImage            = "sidecar.istio.io/proxyImage"
	AnnoLogLevel              = "sidecar.istio.io/logLevel"
	AnnoComponentLogLevel     = "sidecar.istio.io/componentLogLevel"
	AnnoAgentLogLevel         = "sidecar.istio.io/agentLogLevel"
	AnnoInterceptionMode      = "sidecar.istio.io/interceptionMode"
	AnnoNativeSidecar         = "sidecar.istio.io/nativeSidecar"
	AnnoRewriteProbes         = "sidecar.istio.io/rewriteAppHTTPProbers"
	AnnoBootstrapOverride     = "sidecar.istio.io/bootstrapOverride"
	AnnoUserVolume            = "sidecar.istio.io/userVolume"
	AnnoUserVolumeMount       = "sidecar.istio.io/userVolumeMount"
	AnnoInjectTemplates       = "inject.istio.io/templates"
	AnnoStatusPort            = "status.sidecar.istio.io/port"
	AnnoReadinessInitialDelay = "readiness.status.sidecar.istio.io/initialDelaySeconds"
	AnnoReadinessPeriod       = "readiness.status.sidecar.istio.io/periodSeconds"
	AnnoReadinessFailure      = "readiness.status.sidecar.istio.io/failureThreshold"
	AnnoIncludeOutboundIPs    = "traffic.sidecar.istio.io/includeOutboundIPRanges"
	AnnoExcludeOutboundIPs    = "traffic.sidecar.istio.io/excludeOutboundIPRanges"
	AnnoIncludeInboundPorts   = "traffic.sidecar.istio.io/includeInboundPorts"
	AnnoExcludeInboundPorts   = "traffic.sidecar.istio.io/excludeInboundPorts"
	AnnoIncludeOutboundPorts  = "traffic.sidecar.istio.io/includeOutboundPorts"
	AnnoExcludeOutboundPorts  = "traffic.sidecar.istio.io/excludeOutboundPorts"
	AnnoExcludeInterfaces     = "traffic.sidecar.istio.io/excludeInterfaces"
	AnnoKubevirtInterfaces    = "traffic.sidecar.istio.io/kubevirtInterfaces"
	AnnoProxyConfig           = "proxy.istio.io/config"
	AnnoMergeMetrics          = "prometheus.istio.io/merge-metrics"
	AnnoRev                   = "istio.io/rev"

	// AnnoJobWrap ("true") makes meshd wrap the pod's app containers'
	// commands in `meshd job-wrap`, so a Job completes although its sidecar
	// is a regular container (no native sidecars).
	AnnoJobWrap = "sidecar.meshd.io/jobWrap"
)

// unsupported are Istio annotations meshd refuses, with the reason.
var unsupported = map[string]string{
	AnnoBootstrapOverride: "a custom Envoy bootstrap is not supported by meshd (its config must come from meshd over xDS); remove it",
	AnnoUserVolume:        "extra sidecar volumes are not supported by meshd's injector; remove it",
	AnnoUserVolumeMount:   "extra sidecar volume mounts are not supported by meshd's injector; remove it",
}

// validators check an annotation's value; the error says what is wanted.
var validators = map[string]func(string) error{
	AnnoInjectTemplates:       validTemplates,
	AnnoProxyCPU:              validQuantity,
	AnnoProxyMemory:           validQuantity,
	AnnoProxyCPULimit:         validQuantity,
	AnnoProxyMemoryLimit:      validQuantity,
	AnnoLogLevel:              validEnvoyLevel,
	AnnoComponentLogLevel:     validComponentLevels,
	AnnoAgentLogLevel:         validAgentLevels,
	AnnoInterceptionMode:      validInterceptionMode,
	AnnoNativeSidecar:         validBool,
	AnnoRewriteProbes:         validBool,
	AnnoMergeMetrics:          validBool,
	AnnoJobWrap:               validBool,
	AnnoStatusPort:            validPort,
	AnnoReadinessInitialDelay: validUint32,
	AnnoReadinessPeriod:       validUint32,
	AnnoReadinessFailure:      validUint32,
	AnnoIncludeOutboundIPs:    func(v string) error { return validCIDRs(v, true) },
	AnnoExcludeOutboundIPs:    func(v string) error { return validCIDRs(v, false) },
	AnnoIncludeInboundPorts:   func(v string) error { return validPorts(v, true) },
	AnnoExcludeInboundPorts:   func(v string) error { return validPorts(v, false) },
	AnnoIncludeOutboundPorts:  func(v string) error { return validPorts(v, false) },
	AnnoExcludeOutboundPorts:  func(v string) error { return validPorts(v, false) },
	AnnoExcludeInterfaces:     validInterfaces,
	AnnoKubevirtInterfaces:    validInterfaces,
	AnnoProxyImage:            validImage,
}

// validateAnnotations checks every annotation meshd reads; the error lists
// each bad one, sorted by name, as
// `annotation sidecar.istio.io/proxyCPU "lots": want a quantity such as 100m or 1`.
func validateAnnotations(a map[string]string) error {
	var problems []string
	for name, v := range a {
		if why, ok := unsupported[name]; ok {
			problems = append(problems, fmt.Sprintf("annotation %s %q: %s", name, v, why))
			continue
		}
		if check, ok := validators[name]; ok {
			if err := check(v); err != nil {
				problems = append(problems, fmt.Sprintf("annotation %s %q: %v", name, v, err))
			}
		}
	}
	if len(problems) == 0 {
		return nil
	}
	sort.Strings(problems)
	return Rejection(strings.Join(problems, "; "))
}

func validQuantity(v string) error {
	for _, r := range v {
		if unicode.IsControl(r) {
			return fmt.Errorf("want a Kubernetes quantity such as 100m or 128Mi")
		}
	}
	if _, err := resource.ParseQuantity(v); err != nil {
		return fmt.Errorf("want a Kubernetes quantity such as 100m or 128Mi")
	}
	return nil
}

var envoyLevels = []string{"trace", "debug", "info", "warning", "warn", "error", "critical", "off"}

func validEnvoyLevel(v string) error {
	for _, l := range envoyLevels {
		if v == l {
			return nil
		}
	}
	return fmt.Errorf("want an Envoy log level: %s", strings.Join(envoyLevels, ", "))
}

// validComponentLevels checks "component:level,component:level".
func validComponentLevels(v string) error {
	for _, part := range strings.Split(v, ",") {
		comp, level, ok := strings.Cut(strings.TrimSpace(part), ":")
		if !ok || comp == "" || validEnvoyLevel(level) != nil {
			return fmt.Errorf("want COMPONENT:LEVEL[,COMPONENT:LEVEL...] with Envoy levels, e.g. misc:error")
		}
	}
	return nil
}

var agentLevels = []string{"debug", "info", "warn", "error", "fatal", "none"}

// validAgentLevels checks pilot-agent's --log_output_level: "level" or
// "scope:level,scope:level".
func validAgentLevels(v string) error {
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		level := part
		if scope, l, ok := strings.Cut(part, ":"); ok {
			if scope == "" {
				level = ""
			} else {
				level = l
			}
		}
		found := false
		for _, l := range agentLevels {
			found = found || level == l
		}
		if !found {
			return fmt.Errorf("want LEVEL or SCOPE:LEVEL[,...] with levels %s, e.g. default:info", strings.Join(agentLevels, ", "))
		}
	}
	return nil
}

func validInterceptionMode(v string) error {
	switch v {
	case "REDIRECT", "TPROXY", "NONE":
		return nil
	}
	return fmt.Errorf("want REDIRECT, TPROXY or NONE")
}

func validBool(v string) error {
	if _, err := strconv.ParseBool(v); err != nil {
		return fmt.Errorf("want true or false")
	}
	return nil
}

func validUint32(v string) error {
	if _, err := strconv.ParseUint(v, 10, 32); err != nil {
		return fmt.Errorf("want a whole number of 0 or more")
	}
	return nil
}

func validPort(v string) error {
	if _, err := strconv.ParseUint(strings.TrimSpace(v), 10, 16); err != nil {
		return fmt.Errorf("want a port number from 0 to 65535")
	}
	return nil
}

// validPorts checks a comma-separated port list ("*" too when star).
func validPorts(v string, star bool) error {
	v = strings.TrimSpace(v)
	if v == "" || (star && v == "*") {
		return nil
	}
	for _, p := range strings.Split(v, ",") {
		if _, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16); err != nil {
			if star {
				return fmt.Errorf("want \"*\" or comma-separated port numbers (0-65535); %q is not one", p)
			}
			return fmt.Errorf("want comma-separated port numbers (0-65535); %q is not one", p)
		}
	}
	return nil
}

// validCIDRs checks a comma-separated CIDR list ("*" too when star).
func validCIDRs(v string, star bool) error {
	if v == "" || (star && v == "*") {
		return nil
	}
	for _, c := range strings.Split(v, ",") {
		if _, err := netip.ParsePrefix(strings.TrimSpace(c)); err != nil {
			if star {
				return fmt.Errorf("want \"*\" or comma-separated CIDRs such as 10.0.0.0/8; %q is not one", c)
			}
			return fmt.Errorf("want comma-separated CIDRs such as 10.0.0.0/8; %q is not one", c)
		}
	}
	return nil
}

// validInterfaces checks a comma-separated list of network interface names.
func validInterfaces(v string) error {
	for _, name := range strings.Split(v, ",") {
		name = strings.TrimSpace(name)
		if name == "" || len(name) > 15 || strings.ContainsAny(name, "/ \t\n:") {
			return fmt.Errorf("want comma-separated network interface names (at most 15 characters, no '/', ':' or spaces)")
		}
	}
	return nil
}

func validImage(v string) error {
	if v == "" || strings.ContainsAny(v, " \t\n") {
		return fmt.Errorf("want a container image reference")
	}
	return nil
}
