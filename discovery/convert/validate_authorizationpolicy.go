package convert

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	security "istio.io/api/security/v1beta1"
)

// validateAuthorizationPolicy applies istiod's ValidateAuthorizationPolicy
// (pkg/config/validation) and the CRD's rules, naming the field:
//   - selector and targetRef(s) exclude each other; selector labels as
//     for PeerAuthentication;
//   - action CUSTOM needs provider.name, the other actions must not set a
//     provider;
//   - a rule's from needs a source, its to an operation, and neither may be
//     empty; a when condition needs a key and values or notValues;
//   - ports are 0-65535 and ipBlocks addresses or CIDRs;
//   - methods, paths and hosts are not empty.
//
// Whether meshd can translate a valid policy (AUDIT, CUSTOM, JWT fields,
// other conditions) is translate's report (authz.go): such a policy is
// kept and fails closed.
func validateAuthorizationPolicy(ap *security.AuthorizationPolicy) *fieldError {
	if fe := validatePolicySelector(ap.GetSelector().GetMatchLabels(), "spec.selector.matchLabels"); fe != nil {
		return fe
	}
	if ap.GetSelector() != nil && (ap.GetTargetRef() != nil || len(ap.GetTargetRefs()) > 0) {
		return errf("spec.targetRefs", "only one of targetRefs or selector can be set")
	}
	if _, ok := security.AuthorizationPolicy_Action_name[int32(ap.GetAction())]; !ok {
		return errf("spec.action", "unknown action %d (want ALLOW, DENY, AUDIT or CUSTOM)", int32(ap.GetAction()))
	}
	if ap.GetAction() == security.AuthorizationPolicy_CUSTOM {
		if ap.GetProvider().GetName() == "" {
			return errf("spec.provider.name", "a CUSTOM policy needs a provider name")
		}
	} else if ap.GetProvider() != nil {
		return errf("spec.provider", "only a CUSTOM policy can set a provider")
	}
	for i, r := range ap.GetRules() {
		if fe := validateAuthzRule(r, fmt.Sprintf("spec.rules[%d]", i)); fe != nil {
			return fe
		}
	}
	return nil
}

// validateAuthzRule checks one rule at path.
func validateAuthzRule(r *security.Rule, path string) *fieldError {
	if r == nil {
		return errf(path, "rule must not be empty")
	}
	for i, f := range r.GetFrom() {
		p := fmt.Sprintf("%s.from[%d].source", path, i)
		if fe := validateAuthzSource(f.GetSource(), p); fe != nil {
			return fe
		}
	}
	for i, t := range r.GetTo() {
		p := fmt.Sprintf("%s.to[%d].operation", path, i)
		if fe := validateAuthzOperation(t.GetOperation(), p); fe != nil {
			return fe
		}
	}
	for i, c := range r.GetWhen() {
		p := fmt.Sprintf("%s.when[%d]", path, i)
		if c.GetKey() == "" {
			return errf(p+".key", "key must not be empty")
		}
		if len(c.GetValues()) == 0 && len(c.GetNotValues()) == 0 {
			return errf(p, "condition %q needs values or notValues", c.GetKey())
		}
		if c.GetKey() == "destination.port" {
			if fe := validateAuthzPorts(c.GetValues(), c.GetNotValues(), p); fe != nil {
				return fe
			}
		}
		if c.GetKey() == "source.ip" || c.GetKey() == "remote.ip" || c.GetKey() == "destination.ip" {
			if fe := validateIPBlocks(c.GetValues(), c.GetNotValues(), p); fe != nil {
				return fe
			}
		}
	}
	return nil
}

// validateAuthzSource checks a from.source.
func validateAuthzSource(s *security.Source, path string) *fieldError {
	if s == nil {
		return errf(path, "source must not be empty")
	}
	if len(s.GetPrincipals())+len(s.GetNotPrincipals())+len(s.GetNamespaces())+len(s.GetNotNamespaces())+
		len(s.GetIpBlocks())+len(s.GetNotIpBlocks())+len(s.GetRemoteIpBlocks())+len(s.GetNotRemoteIpBlocks())+
		len(s.GetRequestPrincipals())+len(s.GetNotRequestPrincipals())+len(s.GetServiceAccounts())+
		len(s.GetNotServiceAccounts())+len(s.GetTrustDomains())+len(s.GetNotTrustDomains()) == 0 {
		return errf(path, "source must not be empty")
	}
	if fe := validateIPBlocks(s.GetIpBlocks(), s.GetNotIpBlocks(), path+".ipBlocks"); fe != nil {
		return fe
	}
	return validateIPBlocks(s.GetRemoteIpBlocks(), s.GetNotRemoteIpBlocks(), path+".remoteIpBlocks")
}

// validateAuthzOperation checks a to.operation.
func validateAuthzOperation(o *security.Operation, path string) *fieldError {
	if o == nil {
		return errf(path, "operation must not be empty")
	}
	if len(o.GetHosts())+len(o.GetNotHosts())+len(o.GetPorts())+len(o.GetNotPorts())+len(o.GetMethods())+
		len(o.GetNotMethods())+len(o.GetPaths())+len(o.GetNotPaths()) == 0 {
		return errf(path, "operation must not be empty")
	}
	for field, vs := range map[string][]string{"hosts": o.GetHosts(), "notHosts": o.GetNotHosts(),
		"methods": o.GetMethods(), "notMethods": o.GetNotMethods(), "paths": o.GetPaths(), "notPaths": o.GetNotPaths()} {
		for i, v := range vs {
			if v == "" {
				return errf(fmt.Sprintf("%s.%s[%d]", path, field, i), "empty value is not allowed")
			}
		}
	}
	return validateAuthzPorts(o.GetPorts(), o.GetNotPorts(), path+".ports")
}

// validateAuthzPorts checks port numbers 0-65535.
func validateAuthzPorts(values, notValues []string, path string) *fieldError {
	for _, v := range append(append([]string{}, values...), notValues...) {
		if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 65535 {
			return errf(path, "invalid port %q (want 0-65535)", v)
		}
	}
	return nil
}

// validateIPBlocks checks addresses and CIDRs.
func validateIPBlocks(values, notValues []string, path string) *fieldError {
	for _, v := range append(append([]string{}, values...), notValues...) {
		var err error
		if strings.Contains(v, "/") {
			_, err = netip.ParsePrefix(v)
		} else {
			_, err = netip.ParseAddr(v)
		}
		if err != nil {
			return errf(path, "invalid IP address or CIDR %q", v)
		}
	}
	return nil
}
