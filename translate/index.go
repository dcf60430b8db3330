package translate

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"

	"github.com/meshd/meshd/internal/model"
)

// Options are mesh-wide translation settings.
type Options struct {
	// Domain is the cluster DNS domain, default "cluster.local".
	Domain string
	// FilterGatewayClusters is istiod's PILOT_FILTER_GATEWAY_CLUSTER_CONFIG:
	// router scopes (gateways) receive only the clusters of the services
	// that VirtualServices bound to their Gateways route to, instead of
	// every cluster exported to their namespace (gatewayclusters.go).
	FilterGatewayClusters bool
	// ScopeGatewayToNamespace is istiod's PILOT_SCOPE_GATEWAY_TO_NAMESPACE:
	// a router scope gets only the Gateways of its own namespace (whose
	// selector matches its labels), not those of every namespace
	// (gateway.go).
	ScopeGatewayToNamespace bool
}

// Index is the mesh-wide, scope-independent part of translation, built once
// per Snapshot and shared by every scope's Build. It is immutable after
// NewIndex returns.
type Index struct {
	snap   *model.Snapshot
	domain string

	// services holds one service per hostname (the oldest), sorted by hostname.
	services []*model.Service
	byHost   map[string]*model.Service
	// vs maps an exact FQDN to the VirtualServices bound to the mesh that
	// claim it, oldest first (claimHosts).
	vs map[string][]*virtualService
	// vsAll holds every accepted mesh VirtualService, oldest first.
	vsAll []*virtualService
	// vsWildcard holds mesh VirtualServices with wildcard hosts, oldest first.
	vsWildcard []*virtualService
	// drs holds the accepted DestinationRules per namespace, oldest first,
	// at most one per host; drAll all of them, oldest first.
	drs   map[string][]*destRule
	drAll []*destRule
	// rootNamespace holds mesh-wide defaults (DestinationRules, Sidecars).
	rootNamespace string
	trustDomain   string
	// exportDefaults are the MeshConfig's exportTo defaults (exportto.go).
	exportDefaults exportDefaults
	// filterGatewayClusters is Options.FilterGatewayClusters,
	// scopeGatewayToNamespace Options.ScopeGatewayToNamespace.
	filterGatewayClusters   bool
	scopeGatewayToNamespace bool
	// gateways holds the Gateways with the servers meshd serves, oldest
	// first (gateway.go); gatewayVS the VirtualServices bound to named
	// gateways, accepted, oldest first (gatewayvs.go).
	gateways  []*gatewayConfig
	gatewayVS []*gatewayVirtualService
	// clas holds every ClusterLoadAssignment of the mesh by EDS service
	// name: the cluster name, except for a subset whose labels differ between
	// the DestinationRules of several namespaces (see edsName).
	clas map[string]*endpoint.ClusterLoadAssignment
	// subsetEDS maps a subset cluster name and its labels to its EDS name.
	subsetEDS map[string]string
	// svcEndpoints records, per "hostname/namespace", the endpoints each
	// service's assignments and EndpointShape part were computed from
	// (endpoints_reuse.go).
	svcEndpoints map[string]*svcEndpoints
	// byNamespace holds the services of each namespace, in services' order.
	byNamespace map[string][]*model.Service
	// logs are the access loggers MeshConfig turns on (accesslog.go).
	logs accessLogs
	// sourceLabels are the sourceLabels of the mesh VirtualServices' HTTP
	// matches, and views the memoised per-view outputs (view.go).
	sourceLabels []map[string]string
	views        views
	// shared memoises values several views or scopes share (share.go),
	// domains the services' virtual host domains (domains.go).
	shared  sharedValues
	domains atomic.Pointer[domainTable]
	// carry holds the values carried from Index to Index (carry.go).
	carry carry
	// checked remembers validation of resources shared between scopes,
	// viewChecks that of whole views (validate_view.go).
	checked    memo
	viewChecks sync.Map
	errors     []model.ObjectError
	// enableAutoMTLS is MeshConfig enableAutoMtls (default true).
	enableAutoMTLS bool
	// gatewayErrors are what building the Gateways for their workloads
	// reports (reportGatewayConflicts); they depend on Secrets and Pods too,
	// so they are found again when only those changed. allErrors is both.
	gatewayErrors, allErrors []model.ObjectError
}

// NewIndex validates the Snapshot's config against its registry and prepares
// everything that does not depend on the proxy scope.
func NewIndex(snap *model.Snapshot, opts Options) *Index { return NewIndexFrom(nil, snap, opts) }

// NewIndexFrom is NewIndex given the previous push's Index (nil: none). When
// only endpoints and routing config (VirtualServices, Gateways, Sidecars)
// changed between prev's Snapshot and snap, the assignments
// of every service whose endpoints are the very same (the model shares
// them between snapshots) are prev's: an endpoint change costs its own
// services, not the mesh. The Index is the one NewIndex would build.
func NewIndexFrom(prev *Index, snap *model.Snapshot, opts Options) *Index {
	if opts.Domain == "" {
		opts.Domain = "cluster.local"
	}
	mesh := snap.MeshConfig()
	x := &Index{
		snap: snap, domain: opts.Domain, byHost: map[string]*model.Service{}, byNamespace: map[string][]*model.Service{},
		vs: map[string][]*virtualService{}, drs: map[string][]*destRule{},
		rootNamespace: mesh.GetRootNamespace(), trustDomain: mesh.GetTrustDomain(),
		clas: map[string]*endpoint.ClusterLoadAssignment{}, subsetEDS: map[string]string{},
		exportDefaults: exportDefaults{
			service:         mesh.GetDefaultServiceExportTo(),
			virtualService:  mesh.GetDefaultVirtualServiceExportTo(),
			destinationRule: mesh.GetDefaultDestinationRuleExportTo(),
		},
		filterGatewayClusters: opts.FilterGatewayClusters, scopeGatewayToNamespace: opts.ScopeGatewayToNamespace,
	}
	if x.trustDomain == "" {
		x.trustDomain = "cluster.local"
	}
	x.enableAutoMTLS = mesh.GetEnableAutoMtls() == nil || mesh.GetEnableAutoMtls().GetValue()
	sameConfig := prev != nil && prev.domain == x.domain && prev.filterGatewayClusters == x.filterGatewayClusters &&
		prev.scopeGatewayToNamespace == x.scopeGatewayToNamespace && prev.snap.SameObjects(snap, model.KindEndpointSlice, model.KindPod, model.KindSecret) &&
		slices.Equal(prev.snap.Services(), snap.Services())
	if sameConfig {
		x.reuseConfig(prev)
		// Gateway errors depend on Secrets (credentialName) and on where
		// gateway pods run (reportingScopes); pods churn in every rolling
		// update, gateway pods seldom, so only a Secret change finds them
		// again on this path (any other config change rebuilds them).
		if prev.snap.SameObjects(snap, model.KindEndpointSlice, model.KindPod) || len(x.gateways) == 0 {
			x.gatewayErrors = prev.gatewayErrors
		} else {
			x.reportGatewayConflicts() // Secrets changed
		}
	} else {
		x.indexServices()
		x.indexDestinationRules()
		x.indexVirtualServices()
		x.indexSourceLabels()
		x.indexGateways()
		x.indexPeerAuthentications()
		x.indexAuthorizationPolicies()
		x.indexRequestAuthentications()
	}
	// Assignments depend on services, their endpoints and DestinationRules
	// (subsets), not on the other routing config.
	if prev != nil && prev.domain == x.domain && prev.filterGatewayClusters == x.filterGatewayClusters &&
		prev.snap.SameObjects(snap, model.KindEndpointSlice, model.KindPod,
			model.KindVirtualService, model.KindGateway, model.KindSidecar, model.KindSecret, model.KindPeerAuthentication, model.KindAuthorizationPolicy,
			model.KindRequestAuthentication, model.KindJWKS) {
		x.reuseEndpoints(prev)
	} else {
		x.buildEndpoints()
	}
	if !sameConfig {
		x.indexAccessLogs()
	}
	if prev != nil && slices.Equal(prev.services, x.services) {
		x.domains.Store(prev.domains.Load()) // a function of the services alone
	}
	x.carry = newCarry(prev, x)
	x.checked.carried = x.carry.entry
	x.allErrors = append(slices.Clip(x.errors), x.gatewayErrors...)
	return x
}

// reuseConfig takes over what prev derived from config alone — services,
// DestinationRules, VirtualServices (validated, delegates merged),
// Gateways, sourceLabels, access loggers and the config errors found — for an Index
// whose Snapshot differs from prev's in EndpointSlices and Pods only, and
// has the very same services: an endpoint change does not validate every
// VirtualService again. The values are shared, never modified.
func (x *Index) reuseConfig(prev *Index) {
	x.services, x.byHost, x.byNamespace = prev.services, prev.byHost, prev.byNamespace
	x.vs, x.vsAll, x.vsWildcard = prev.vs, prev.vsAll, prev.vsWildcard
	x.drs, x.drAll = prev.drs, prev.drAll
	x.sourceLabels, x.logs, x.errors = prev.sourceLabels, prev.logs, slices.Clip(prev.errors)
	x.gateways, x.gatewayVS = prev.gateways, prev.gatewayVS
}

// Snapshot returns the Snapshot the Index was built from.
func (x *Index) Snapshot() *model.Snapshot { return x.snap }

// Errors returns the config problems found while indexing (rejected or
// conflicting objects), in a stable order.
func (x *Index) Errors() []model.ObjectError { return x.allErrors }

// ClusterLoadAssignment returns the mesh-wide endpoints of an EDS cluster.
func (x *Index) ClusterLoadAssignment(cluster string) (*endpoint.ClusterLoadAssignment, bool) {
	c, ok := x.clas[cluster]
	return c, ok
}

// Service returns the service serving a hostname.
func (x *Index) Service(host string) (*model.Service, bool) {
	s, ok := x.byHost[host]
	return s, ok
}

func (x *Index) report(cfgKind model.Kind, ns, name, source, field, format string, args ...any) {
	x.errors = append(x.errors, model.ObjectError{
		Kind: cfgKind, Namespace: ns, Name: name, Source: source, Field: field,
		Message: fmt.Sprintf(format, args...),
	})
}

// indexServices keeps the oldest service per hostname and reports the
// others, and the ports sidecars get no outbound listener for (reserved.go).
func (x *Index) indexServices() {
	for _, svc := range x.snap.Services() {
		owner := x.snap.ServicesByHost(svc.Hostname)[0]
		if owner != svc {
			x.report(svc.Origin, svc.Namespace, svc.Name, "", "spec.hosts",
				"host %q is already defined by %s %s/%s (older); this definition is ignored",
				svc.Hostname, owner.Origin, owner.Namespace, owner.Name)
			continue
		}
		x.reportReservedPorts(svc)
		x.services = append(x.services, svc)
		x.byHost[svc.Hostname] = svc
		x.byNamespace[svc.Namespace] = append(x.byNamespace[svc.Namespace], svc)
	}
}
