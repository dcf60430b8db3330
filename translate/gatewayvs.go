package translate

import (
	"net"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// gatewayVirtualService is a VirtualService bound to named gateways
// (spec.gateways other than "mesh"), accepted for them: its spec has the
// delegates merged and every gateway name resolved to "namespace/name"
// (spec.gateways and the gateways of HTTP, TCP and TLS matches), and its
// hosts are resolved as istiod's ResolveShortnameToFQDN resolves them
// (only a name without a dot gets ".<namespace>.svc.<domain>": gateway
// hosts are mostly external names such as "api.bank.example").
type gatewayVirtualService struct {
	*virtualService
	// gateways holds the resolved names of the Gateways it binds to.
	gateways map[string]bool
}

// indexGatewayVirtualServices accepts the VirtualServices bound to named
// gateways, oldest first. One also bound to the mesh was checked and its
// delegates merged by indexVirtualServices (mesh holds those accepted;
// a rejected one was reported there). Others are checked here, rejected
// and reported alone, as mesh VirtualServices are. Hosts are not claimed:
// on a gateway, istiod merges the routes of every VirtualService bound to
// it for a host (gatewayroutes.go).
func (x *Index) indexGatewayVirtualServices(configs []*model.Config, cat vsCatalog, mesh map[string]*virtualService) {
	for _, cfg := range configs {
		spec := cfg.Spec.(*networking.VirtualService)
		if len(spec.GetHosts()) == 0 || !hasNamedGateway(spec.GetGateways()) {
			continue
		}
		gws := resolvedGateways(spec.GetGateways(), cfg.Namespace)
		var merged *networking.VirtualService
		if boundToMesh(spec.GetGateways()) {
			vs, ok := mesh[cfg.Key()]
			if !ok {
				continue
			}
			merged = vs.spec
		} else {
			if field, err := x.checkVirtualService(cfg, spec, false); err != nil {
				x.report(cfg.Kind, cfg.Namespace, cfg.Name, cfg.Source, field, "%v; the VirtualService is not applied", err)
				continue
			}
			merged = x.mergeDelegates(cfg, spec, cat)
		}
		vs := &virtualService{
			cfg: cfg, spec: withResolvedGateways(merged, cfg.Namespace),
			export: resolveExportTo(x.vsExportTo(spec.GetExportTo()), cfg.Namespace),
		}
		for _, h := range spec.GetHosts() {
			vs.hosts = append(vs.hosts, resolveShortname(h, cfg.Namespace, x.domain))
		}
		set := map[string]bool{}
		for _, g := range gws {
			set[g] = true
		}
		x.gatewayVS = append(x.gatewayVS, &gatewayVirtualService{virtualService: vs, gateways: set})
	}
}

// hasNamedGateway reports whether a VirtualService binds to a gateway
// other than "mesh".
func hasNamedGateway(names []string) bool {
	return slices.ContainsFunc(names, func(g string) bool { return g != meshGateway })
}

// resolvedGateways returns the named gateways of a VirtualService of
// namespace ns, resolved ("mesh" left out).
func resolvedGateways(names []string, ns string) []string {
	var out []string
	for _, g := range names {
		if g != meshGateway {
			out = append(out, resolveGatewayName(g, ns))
		}
	}
	return out
}

// resolveGatewayName is istiod's resolveGatewayName: "name" is the
// Gateway "name" of the VirtualService's namespace ns, "./name" too,
// "namespace/name" stays, and the legacy "name.namespace[.svc.<domain>]"
// becomes "namespace/name".
func resolveGatewayName(g, ns string) string {
	if before, after, found := strings.Cut(g, "/"); found {
		if before == "." {
			return ns + "/" + after
		}
		return g
	}
	name, rest, found := strings.Cut(g, ".")
	if !found {
		return ns + "/" + g
	}
	gwNS, _, _ := strings.Cut(rest, ".")
	return gwNS + "/" + name
}

// withResolvedGateways returns a copy of spec whose gateway names (the
// VirtualService's and its matches') are resolved for namespace ns, so
// that they compare with a Gateway's "namespace/name".
func withResolvedGateways(spec *networking.VirtualService, ns string) *networking.VirtualService {
	out := proto.Clone(spec).(*networking.VirtualService)
	resolve := func(names []string) {
		for i, g := range names {
			if g != meshGateway {
				names[i] = resolveGatewayName(g, ns)
			}
		}
	}
	resolve(out.Gateways)
	for _, r := range out.GetHttp() {
		for _, m := range r.GetMatch() {
			resolve(m.Gateways)
		}
	}
	for _, r := range out.GetTcp() {
		for _, m := range r.GetMatch() {
			resolve(m.Gateways)
		}
	}
	for _, r := range out.GetTls() {
		for _, m := range r.GetMatch() {
			resolve(m.Gateways)
		}
	}
	return out
}

// resolveShortname is istiod's ResolveShortnameToFQDN for a VirtualService
// host: "*", IP addresses and names with a dot are kept; a name without a
// dot is a service of the VirtualService's namespace.
func resolveShortname(h, ns, domain string) string {
	if h == "*" || net.ParseIP(h) != nil || strings.Contains(h, ".") {
		return h
	}
	return h + "." + ns + ".svc." + domain
}

// gatewayVirtualServices returns the VirtualServices bound to the Gateway
// gw ("namespace/name") that the scope sees, in istiod's
// VirtualServicesForGateway order: those of the proxy's namespace not
// exported everywhere, then those exported to it by name, then public
// ones; the oldest first within each (vsRank). Memoised per builder.
func (b *builder) gatewayVirtualServices(gw string) []*gatewayVirtualService {
	if out, ok := b.gwVS[gw]; ok {
		return out
	}
	ns := b.scope.Namespace
	var out []*gatewayVirtualService
	for _, vs := range b.x.gatewayVS {
		if vs.gateways[gw] && b.x.vsExported(vs.virtualService, ns) {
			out = append(out, vs)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return vsRank(out[i].virtualService, ns) < vsRank(out[j].virtualService, ns) })
	if b.gwVS == nil {
		b.gwVS = map[string][]*gatewayVirtualService{}
	}
	b.gwVS[gw] = out
	return out
}

// hostSubsetOf is istiod's host.Name.SubsetOf: n is covered by o ("*"
// wildcards only lead).
func hostSubsetOf(n, o string) bool {
	nw, ow := strings.HasPrefix(n, "*"), strings.HasPrefix(o, "*")
	switch {
	case nw && ow:
		return len(n) >= len(o) && strings.HasSuffix(n[1:], o[1:])
	case nw:
		return false
	case ow:
		return strings.HasSuffix(n, o[1:])
	}
	return n == o
}

// hostOverlaps is istiod's host.Name.Matches: either name covers the other.
func hostOverlaps(n, o string) bool { return hostSubsetOf(n, o) || hostSubsetOf(o, n) }

// intersectHosts is istiod's host.Names.Intersection: for each pair of
// names where one covers the other, the narrower one, once, in order.
func intersectHosts(a, b []string) []string {
	var out []string
	for _, h := range a {
		for _, o := range b {
			var n string
			switch {
			case hostSubsetOf(h, o):
				n = h
			case hostSubsetOf(o, h):
				n = o
			default:
				continue
			}
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out
}

// serverHostsFor is istiod's host.NamesForNamespace: the server hosts a
// VirtualService of namespace ns may bind to, their "ns/" prefix removed
// ("*/" was removed when the server was indexed, "./" made "<ns>/").
func serverHostsFor(hosts []string, ns string) []string {
	out := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if h, ok := serverHostFor(h, ns); ok {
			out = append(out, h)
		}
	}
	return out
}

// serverHostFor is serverHostsFor for one server host: h without its
// "ns/" prefix, and whether a VirtualService of namespace ns may bind it.
func serverHostFor(h, ns string) (string, bool) {
	hostNS, name, found := strings.Cut(h, "/")
	if !found {
		return h, true
	}
	return name, hostNS == ns || hostNS == "*"
}

// bindsServer reports whether a VirtualService's hosts match a server's
// hosts, as istiod's pickMatchingGatewayHosts decides it for TCP and TLS
// servers: a host "ns/name" only for a VirtualService of namespace ns,
// either side's wildcard covering the other.
func bindsServer(serverHosts []string, vs *gatewayVirtualService) bool {
	for _, h := range serverHosts {
		h, ok := serverHostFor(h, vs.cfg.Namespace)
		if ok && slices.ContainsFunc(vs.hosts, func(v string) bool { return hostOverlaps(h, v) }) {
			return true
		}
	}
	return false
}
