package translate

import (
	"slices"
	"strings"
)

// Trust domains in AuthorizationPolicy principals, as istiod's
// trustdomain.Bundle.ReplaceTrustDomainAliases: a principal
// "<td>/ns/<ns>/sa/<sa>" whose trust domain is "cluster.local" (a pointer
// to the local trust domain, whatever it is), the mesh's trustDomain or
// one of its trustDomainAliases (MeshConfig) matches every one of them —
// the local trust domain first, then the aliases. Other principals, and
// those with "*" as their trust domain, are kept as they are.

// authzEnv is what the authorization filters of every workload of an
// Index share: the resolved ext_authz providers and the trust domains.
type authzEnv struct {
	providers map[string]*extAuthzProvider
	// trust is the local trust domain, then its aliases.
	trust []string
}

// authzEnv returns the Index's authorization environment.
func (x *Index) authzEnv() authzEnv {
	return authzEnv{providers: x.extAuthzProviders(),
		trust: append([]string{x.trustDomain}, x.snap.MeshConfig().GetTrustDomainAliases()...)}
}

// withTrustAliases expands principals over the trust domains.
func withTrustAliases(trust, principals []string) []string {
	if len(trust) == 0 || len(principals) == 0 {
		return principals
	}
	var out []string
	for _, p := range principals {
		parts := strings.Split(p, "/")
		if len(parts) != 5 || parts[0] == "*" || (parts[0] != "cluster.local" && !trustMatch(parts[0], trust)) {
			out = append(out, p)
			continue
		}
		for _, td := range trust {
			np := td + "/" + strings.Join(parts[1:], "/")
			if suffixPattern(td, parts[0]) {
				np = p // "*-td" stays as written for the domains it matches
			}
			if !slices.Contains(out, np) {
				out = append(out, np)
			}
		}
	}
	return out
}

// trustMatch is istiod's stringMatch of a principal's trust domain
// against the trust domains (exact, or a "*" prefix/suffix wildcard on
// either side).
func trustMatch(a string, list []string) bool {
	for _, s := range list {
		if a == s || s == "*" || prefixPattern(a, s) || prefixPattern(s, a) || suffixPattern(a, s) || suffixPattern(s, a) {
			return true
		}
	}
	return false
}

func prefixPattern(a, pattern string) bool {
	p, ok := strings.CutSuffix(pattern, "*")
	return ok && strings.HasPrefix(a, p)
}

func suffixPattern(a, pattern string) bool {
	p, ok := strings.CutPrefix(pattern, "*")
	return ok && strings.HasSuffix(a, p)
}
