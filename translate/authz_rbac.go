package translate

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	rbacpb "github.com/envoyproxy/go-control-plane/envoy/config/rbac/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcher "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	security "istio.io/api/security/v1beta1"

	"github.com/meshd/meshd/internal/model"
)

// AuthorizationPolicy rules → Envoy RBAC policies, as istiod's
// pilot/pkg/security/authz/model (New, Generate) and builder.build:
//   - each rule becomes the RBAC policy "ns[<ns>]-policy[<name>]-rule[<i>]":
//     its permissions are one AND per to.operation (or "any"), its
//     principals one AND per from.source (or "any"); the when conditions
//     are ANDed into every one of them; a field's values are ORed, its
//     notValues are NOT(OR);
//   - a policy without rules is a policy matching nothing (for ALLOW:
//     nothing is allowed);
//   - on a TCP chain an HTTP-only field (hosts, methods, paths,
//     request.headers) makes an ALLOW rule skipped and is dropped from a
//     DENY rule (which then matches more), as istiod's checkError;
//   - what meshd does not translate (unsupportedRuleField) fails closed:
//     the ALLOW rule is skipped, the DENY rule matches every request;
//   - CUSTOM policies become ext_authz filters (authz_custom.go);
//   - AUDIT policies become an RBAC filter with action LOG (it marks the
//     requests it matches for the access log and denies nothing).

// rbacPolicyName is istiod's name of a rule's RBAC policy.
func rbacPolicyName(cfg *model.Config, rule int) string {
	return fmt.Sprintf("ns[%s]-policy[%s]-rule[%d]", cfg.Namespace, cfg.Name, rule)
}

// rbacMatchNever matches no request (istiod's rbacPolicyMatchNever).
func rbacMatchNever() *rbacpb.Policy {
	return &rbacpb.Policy{
		Permissions: []*rbacpb.Permission{{Rule: &rbacpb.Permission_NotRule{NotRule: permAny()}}},
		Principals:  []*rbacpb.Principal{{Identifier: &rbacpb.Principal_NotId{NotId: principalAny()}}},
	}
}

// rbacMatchAll matches every request (meshd's fail-closed DENY).
func rbacMatchAll() *rbacpb.Policy {
	return &rbacpb.Policy{Permissions: []*rbacpb.Permission{permAny()}, Principals: []*rbacpb.Principal{principalAny()}}
}

// authzRules are the RBAC configurations of a workload's policies for one
// kind of chain: AUDIT (LOG), DENY and ALLOW (nil: no such policy), and
// the dry-run DENY and ALLOW policies (istio.io/dry-run: "true"), which
// become shadow rules: evaluated and counted, never enforced.
type authzRules struct {
	log, deny, allow        *rbacpb.RBAC
	denyShadow, allowShadow *rbacpb.RBAC
}

// Shadow rule stat prefixes of dry-run policies (istiod's).
const (
	dryRunAllowPrefix = "istio_dry_run_allow_"
	dryRunDenyPrefix  = "istio_dry_run_deny_"
	// annoDryRun is istiod's dry-run annotation.
	annoDryRun = "istio.io/dry-run"
)

// dryRun reports whether cfg is a dry-run policy, and whether its
// annotation is a valid boolean (an invalid one is enforced, as istiod).
func dryRun(cfg *model.Config) (dry, valid bool) {
	v, ok := cfg.Annotations[annoDryRun]
	if !ok {
		return false, true
	}
	b, err := strconv.ParseBool(v)
	return err == nil && b, err == nil
}

// buildAuthzRules translates policies for HTTP chains (forTCP false) or
// TCP chains.
func buildAuthzRules(env authzEnv, policies []*model.Config, forTCP bool) authzRules {
	var r authzRules
	for _, cfg := range policies {
		spec := cfg.Spec.(*security.AuthorizationPolicy)
		var target **rbacpb.RBAC
		action := rbacpb.RBAC_DENY
		dry, _ := dryRun(cfg)
		switch spec.GetAction() {
		case security.AuthorizationPolicy_ALLOW:
			target, action = &r.allow, rbacpb.RBAC_ALLOW
			if dry {
				target = &r.allowShadow
			}
		case security.AuthorizationPolicy_DENY:
			target = &r.deny
			if dry {
				target = &r.denyShadow
			}
		case security.AuthorizationPolicy_AUDIT:
			target, action = &r.log, rbacpb.RBAC_LOG
		default: // CUSTOM: ext_authz filters of their own (authz_custom.go)
			continue
		}
		rbac := ensureRBAC(target, action)
		if len(spec.GetRules()) == 0 {
			rbac.Policies[rbacPolicyName(cfg, 0)] = rbacMatchNever()
			continue
		}
		for i, rule := range spec.GetRules() {
			name := rbacPolicyName(cfg, i)
			if field, _ := unsupportedRuleField(rule); field != "" {
				if action == rbacpb.RBAC_DENY {
					rbac.Policies[name] = rbacMatchAll()
				}
				continue
			}
			if p, ok := rulePolicy(env, cfg.Namespace, rule, forTCP, action); ok {
				rbac.Policies[name] = p
			}
		}
	}
	return r
}

// ensureRBAC returns *p, created with action if nil.
func ensureRBAC(p **rbacpb.RBAC, action rbacpb.RBAC_Action) *rbacpb.RBAC {
	if *p == nil {
		*p = &rbacpb.RBAC{Action: action, Policies: map[string]*rbacpb.Policy{}}
	}
	return *p
}

// Supported when keys (other keys fail closed).
const (
	attrSrcNamespace = "source.namespace"
	attrSrcPrincipal = "source.principal"
	attrSrcSA        = "source.serviceAccount"
	attrSrcIP        = "source.ip"
	attrRemoteIP     = "remote.ip"
	attrDestIP       = "destination.ip"
	attrDestPort     = "destination.port"
	attrHeader       = "request.headers"
)

// unsupportedRuleField returns the first field of r meshd does not
// translate (relative to the rule) and why, or "".
func unsupportedRuleField(r *security.Rule) (field, why string) {
	for i, f := range r.GetFrom() {
		s := f.GetSource()
		if len(s.GetTrustDomains())+len(s.GetNotTrustDomains()) > 0 {
			return fmt.Sprintf("from[%d].source.trustDomains", i), "trustDomains"
		}
	}
	for i, t := range r.GetTo() {
		o := t.GetOperation()
		for _, v := range append(append([]string{}, o.GetPaths()...), o.GetNotPaths()...) {
			if strings.Contains(v, "{") {
				return fmt.Sprintf("to[%d].operation.paths", i), "path templates ({*}, {**})"
			}
		}
	}
	for i, c := range r.GetWhen() {
		switch k := c.GetKey(); {
		case k == attrSrcNamespace, k == attrSrcPrincipal, k == attrSrcSA, k == attrSrcIP, k == attrRemoteIP, k == attrDestIP, k == attrDestPort:
		case strings.HasPrefix(k, attrHeader+"[") && strings.HasSuffix(k, "]") && len(k) > len(attrHeader)+2:
		case isJWTAttr(k):
		default:
			return fmt.Sprintf("when[%d].key", i), fmt.Sprintf("condition %q", k)
		}
	}
	return "", ""
}

// rulePolicy is one supported rule's RBAC policy; ok is false when the
// rule is skipped (an ALLOW rule with an HTTP-only field on TCP).
func rulePolicy(env authzEnv, ns string, r *security.Rule, forTCP bool, action rbacpb.RBAC_Action) (*rbacpb.Policy, bool) {
	g := &ruleGen{forTCP: forTCP, allow: action == rbacpb.RBAC_ALLOW, ns: ns, trust: env.trust}
	var basePerm []*rbacpb.Permission
	var basePrin []*rbacpb.Principal
	for _, c := range r.GetWhen() {
		switch k := c.GetKey(); k {
		case attrDestIP, attrDestPort:
			basePerm = append(basePerm, g.perm(k, c.GetValues(), c.GetNotValues())...)
		default:
			basePrin = append(basePrin, g.prin(k, c.GetValues(), c.GetNotValues())...)
		}
	}
	p := &rbacpb.Policy{}
	for _, to := range r.GetTo() {
		o := to.GetOperation()
		var and []*rbacpb.Permission
		and = append(and, g.perm(":authority", o.GetHosts(), o.GetNotHosts())...)
		and = append(and, g.perm(":method", o.GetMethods(), o.GetNotMethods())...)
		and = append(and, g.perm("path", o.GetPaths(), o.GetNotPaths())...)
		and = append(and, g.perm(attrDestPort, o.GetPorts(), o.GetNotPorts())...)
		p.Permissions = append(p.Permissions, permAnd(append(and, basePerm...)))
	}
	if len(r.GetTo()) == 0 {
		p.Permissions = []*rbacpb.Permission{permAnd(basePerm)}
	}
	for _, from := range r.GetFrom() {
		s := from.GetSource()
		var and []*rbacpb.Principal
		and = append(and, g.prin(attrSrcPrincipal, s.GetPrincipals(), s.GetNotPrincipals())...)
		and = append(and, g.prin(attrSrcSA, s.GetServiceAccounts(), s.GetNotServiceAccounts())...)
		and = append(and, g.prin(attrSrcNamespace, s.GetNamespaces(), s.GetNotNamespaces())...)
		and = append(and, g.prin(attrRemoteIP, s.GetRemoteIpBlocks(), s.GetNotRemoteIpBlocks())...)
		and = append(and, g.prin(attrSrcIP, s.GetIpBlocks(), s.GetNotIpBlocks())...)
		and = append(and, g.prin(attrReqPrincipal, s.GetRequestPrincipals(), s.GetNotRequestPrincipals())...)
		p.Principals = append(p.Principals, principalAnd(append(and, basePrin...)))
	}
	if len(r.GetFrom()) == 0 {
		p.Principals = []*rbacpb.Principal{principalAnd(basePrin)}
	}
	return p, !g.skip
}

// ruleGen generates one rule's matchers; skip records an HTTP-only field
// on TCP in an ALLOW rule.
type ruleGen struct {
	forTCP, allow, skip bool
	// ns is the policy's namespace, a serviceAccount's default.
	ns string
	// trust are the local trust domain and its aliases (authz_trust.go).
	trust []string
}

// httpOnly reports whether key is dropped on TCP (and marks an ALLOW rule
// skipped).
func (g *ruleGen) httpOnly(key string, n int) bool {
	if !g.forTCP || n == 0 {
		return false
	}
	switch {
	case key == ":authority", key == ":method", key == "path", strings.HasPrefix(key, attrHeader), isJWTAttr(key):
		if g.allow {
			g.skip = true
		}
		return true
	}
	return false
}

// perm is a field's permissions: OR(values), NOT(OR(notValues)).
func (g *ruleGen) perm(key string, values, notValues []string) []*rbacpb.Permission {
	if g.httpOnly(key, len(values)+len(notValues)) {
		return nil
	}
	var out []*rbacpb.Permission
	if len(values) > 0 {
		out = append(out, permOr(permsOf(key, values)))
	}
	if len(notValues) > 0 {
		out = append(out, &rbacpb.Permission{Rule: &rbacpb.Permission_NotRule{NotRule: permOr(permsOf(key, notValues))}})
	}
	return out
}

// prin is a field's principals: OR(values), NOT(OR(notValues)).
func (g *ruleGen) prin(key string, values, notValues []string) []*rbacpb.Principal {
	if g.httpOnly(key, len(values)+len(notValues)) {
		return nil
	}
	if key == attrSrcPrincipal {
		values, notValues = withTrustAliases(g.trust, values), withTrustAliases(g.trust, notValues)
	}
	var out []*rbacpb.Principal
	if len(values) > 0 {
		out = append(out, principalOr(principalsOf(key, values, g.ns)))
	}
	if len(notValues) > 0 {
		out = append(out, &rbacpb.Principal{Identifier: &rbacpb.Principal_NotId{NotId: principalOr(principalsOf(key, notValues, g.ns))}})
	}
	return out
}

// permsOf is one permission per value of an operation field.
func permsOf(key string, values []string) []*rbacpb.Permission {
	out := make([]*rbacpb.Permission, 0, len(values))
	for _, v := range values {
		switch key {
		case ":authority":
			out = append(out, &rbacpb.Permission{Rule: &rbacpb.Permission_Header{Header: headerMatch(key, v, true)}})
		case ":method":
			out = append(out, &rbacpb.Permission{Rule: &rbacpb.Permission_Header{Header: headerMatch(key, v, false)}})
		case "path":
			out = append(out, &rbacpb.Permission{Rule: &rbacpb.Permission_UrlPath{UrlPath: &matcher.PathMatcher{
				Rule: &matcher.PathMatcher_Path{Path: stringMatch(v, "")}}}})
		case attrDestPort:
			n, _ := strconv.Atoi(v) // validated by convert
			out = append(out, &rbacpb.Permission{Rule: &rbacpb.Permission_DestinationPort{DestinationPort: uint32(n)}})
		case attrDestIP:
			out = append(out, &rbacpb.Permission{Rule: &rbacpb.Permission_DestinationIp{DestinationIp: cidrRange(v)}})
		}
	}
	return out
}

// principalsOf is one principal per value of a source field or condition
// (ns: the policy's namespace).
func principalsOf(key string, values []string, ns string) []*rbacpb.Principal {
	out := make([]*rbacpb.Principal, 0, len(values))
	for _, v := range values {
		switch {
		case key == attrSrcPrincipal:
			out = append(out, authenticated(stringMatch(v, spiffePrefix)))
		case key == attrSrcSA:
			out = append(out, authenticated(regexMatch(serviceAccountRegex(ns, v))))
		case key == attrSrcNamespace:
			parts := strings.Split(v, "*")
			for i := range parts {
				parts[i] = regexp.QuoteMeta(parts[i])
			}
			out = append(out, authenticated(regexMatch(".*/ns/"+strings.Join(parts, ".*")+"/.*")))
		case key == attrSrcIP:
			out = append(out, &rbacpb.Principal{Identifier: &rbacpb.Principal_DirectRemoteIp{DirectRemoteIp: cidrRange(v)}})
		case key == attrRemoteIP:
			out = append(out, &rbacpb.Principal{Identifier: &rbacpb.Principal_RemoteIp{RemoteIp: cidrRange(v)}})
		case isJWTAttr(key):
			out = append(out, jwtPrincipal(key, v))
		case strings.HasPrefix(key, attrHeader):
			name := strings.TrimSuffix(strings.TrimPrefix(key, attrHeader+"["), "]")
			out = append(out, &rbacpb.Principal{Identifier: &rbacpb.Principal_Header{Header: headerMatch(name, v, false)}})
		}
	}
	return out
}

// serviceAccountRegex matches the SPIFFE URI of service account v
// ("ns/sa", or "sa" of namespace ns), as istiod's.
func serviceAccountRegex(ns, v string) string {
	saNS, sa, ok := strings.Cut(v, "/")
	if !ok {
		saNS, sa = ns, v
	}
	return fmt.Sprintf("spiffe://.+/ns/%s/(.+/|)sa/%s(/.+)?", regexp.QuoteMeta(saNS), regexp.QuoteMeta(sa))
}

// authenticated matches the peer certificate's URI SAN (or subject).
func authenticated(m *matcher.StringMatcher) *rbacpb.Principal {
	return &rbacpb.Principal{Identifier: &rbacpb.Principal_Authenticated_{
		Authenticated: &rbacpb.Principal_Authenticated{PrincipalName: m}}}
}

// stringMatch is istiod's StringMatcherWithPrefix: "*" any non-empty,
// "*x" suffix, "x*" prefix, else exact, all after prefix.
func stringMatch(v, prefix string) *matcher.StringMatcher {
	switch {
	case v == "*":
		return regexMatch(".+")
	case strings.HasPrefix(v, "*") && prefix == "":
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: v[1:]}}
	case strings.HasPrefix(v, "*"):
		return regexMatch(prefix + ".*" + regexp.QuoteMeta(v[1:]))
	case strings.HasSuffix(v, "*"):
		return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: prefix + strings.TrimSuffix(v, "*")}}
	}
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: prefix + v}}
}

// regexMatch is a safe-regex StringMatcher.
func regexMatch(re string) *matcher.StringMatcher {
	return &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_SafeRegex{SafeRegex: &matcher.RegexMatcher{Regex: re}}}
}

// headerMatch is istiod's HeaderMatcher (HostMatcher with ignoreCase):
// "*" present, "*x" suffix, "x*" prefix, else exact.
func headerMatch(name, v string, ignoreCase bool) *route.HeaderMatcher {
	h := &route.HeaderMatcher{Name: name}
	var m *matcher.StringMatcher
	switch {
	case v == "*":
		h.HeaderMatchSpecifier = &route.HeaderMatcher_PresentMatch{PresentMatch: true}
		return h
	case strings.HasPrefix(v, "*"):
		m = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Suffix{Suffix: v[1:]}}
	case strings.HasSuffix(v, "*"):
		m = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Prefix{Prefix: v[:len(v)-1]}}
	default:
		m = &matcher.StringMatcher{MatchPattern: &matcher.StringMatcher_Exact{Exact: v}}
	}
	m.IgnoreCase = ignoreCase
	h.HeaderMatchSpecifier = &route.HeaderMatcher_StringMatch{StringMatch: m}
	return h
}

// cidrRange parses an address or CIDR (validated by convert).
func cidrRange(v string) *core.CidrRange {
	addr, bits := v, ""
	if i := strings.IndexByte(v, '/'); i >= 0 {
		addr, bits = v[:i], v[i+1:]
	}
	n := 32
	if strings.Contains(addr, ":") {
		n = 128
	}
	if bits != "" {
		n, _ = strconv.Atoi(bits)
	}
	return &core.CidrRange{AddressPrefix: addr, PrefixLen: wrapperspb.UInt32(uint32(n))}
}

func permAny() *rbacpb.Permission { return &rbacpb.Permission{Rule: &rbacpb.Permission_Any{Any: true}} }

func principalAny() *rbacpb.Principal {
	return &rbacpb.Principal{Identifier: &rbacpb.Principal_Any{Any: true}}
}

// permAnd is AND(ps), or AND(any) when empty, as istiod's generatePermission.
func permAnd(ps []*rbacpb.Permission) *rbacpb.Permission {
	if len(ps) == 0 {
		ps = []*rbacpb.Permission{permAny()}
	}
	return &rbacpb.Permission{Rule: &rbacpb.Permission_AndRules{AndRules: &rbacpb.Permission_Set{Rules: ps}}}
}

func permOr(ps []*rbacpb.Permission) *rbacpb.Permission {
	return &rbacpb.Permission{Rule: &rbacpb.Permission_OrRules{OrRules: &rbacpb.Permission_Set{Rules: ps}}}
}

// principalAnd is AND(ps), or AND(any) when empty.
func principalAnd(ps []*rbacpb.Principal) *rbacpb.Principal {
	if len(ps) == 0 {
		ps = []*rbacpb.Principal{principalAny()}
	}
	return &rbacpb.Principal{Identifier: &rbacpb.Principal_AndIds{AndIds: &rbacpb.Principal_Set{Ids: ps}}}
}

func principalOr(ps []*rbacpb.Principal) *rbacpb.Principal {
	return &rbacpb.Principal{Identifier: &rbacpb.Principal_OrIds{OrIds: &rbacpb.Principal_Set{Ids: ps}}}
}
