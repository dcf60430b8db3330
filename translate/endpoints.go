package translate

import (
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"sort"
	"strings"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"

	"github.com/meshd/meshd/internal/model"
)

// buildEndpoints computes the ClusterLoadAssignment of every cluster of every
// service port and of every subset any DestinationRule defines, once for the
// whole mesh: EDS output is shared by all scopes.
func (x *Index) buildEndpoints() {
	x.svcEndpoints = make(map[string]*svcEndpoints, len(x.services))
	for _, svc := range x.services {
		eps := x.snap.Endpoints(svc.Hostname, svc.Namespace)
		if svc.Resolution != model.ResolutionPassthrough {
			rules := x.rulesFor(svc.Hostname)
			for _, p := range svc.Ports {
				name := ClusterName(p.Port, "", svc.Hostname)
				x.clas[name] = loadAssignment(name, eps, p, nil)
				for _, r := range rules {
					for _, s := range r.spec.GetSubsets() {
						x.addSubsetEndpoints(ClusterName(p.Port, s.GetName(), svc.Hostname), eps, p, s)
					}
				}
			}
		}
		x.svcEndpoints[svc.Hostname+"/"+svc.Namespace] = &svcEndpoints{svc: svc, eps: eps, shape: x.shapePart(svc, eps)}
	}
}

// addSubsetEndpoints computes a subset cluster's endpoints. The first
// (oldest) definition of a subset name gets the cluster's own name as EDS
// name; a definition with other labels (a DestinationRule of another
// namespace reusing the name) gets "<cluster>~<hash of labels>", so every
// scope receives the endpoints its own rule selects.
func (x *Index) addSubsetEndpoints(cluster string, eps []model.Endpoint, p model.Port, s *networking.Subset) {
	key := subsetKey(cluster, s.GetLabels())
	if _, ok := x.subsetEDS[key]; ok {
		return
	}
	eds := cluster
	if _, taken := x.clas[cluster]; taken {
		h := fnv.New32a()
		h.Write([]byte(model.CanonicalLabels(s.GetLabels())))
		eds = fmt.Sprintf("%s~%08x", cluster, h.Sum32())
	}
	x.subsetEDS[key] = eds
	x.clas[eds] = loadAssignment(eds, eps, p, s)
}

func subsetKey(cluster string, labels map[string]string) string {
	return cluster + "\x00" + model.CanonicalLabels(labels)
}

// edsName returns the EDS service name of a cluster whose subset selects
// labels (nil for a cluster without subset).
func (x *Index) edsName(cluster string, labels map[string]string) string {
	if labels == nil {
		return cluster
	}
	if n, ok := x.subsetEDS[subsetKey(cluster, labels)]; ok {
		return n
	}
	return cluster
}

// identities returns the SPIFFE identities of svc's endpoints, sorted: the
// names an ISTIO_MUTUAL upstream may present.
func (x *Index) identities(svc *model.Service) []string {
	seen := map[string]bool{}
	for _, ep := range x.snap.Endpoints(svc.Hostname, svc.Namespace) {
		if ep.ServiceAccount != "" {
			ns := svc.Namespace
			seen[fmt.Sprintf("spiffe://%s/ns/%s/sa/%s", x.trustDomain, ns, ep.ServiceAccount)] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// loadAssignment selects the routable endpoints serving port (and matching
// the subset's labels), grouped by locality, sorted. Terminating and
// not-ready endpoints are left out so clients stop calling them at once.
func loadAssignment(name string, eps []model.Endpoint, p model.Port, subset *networking.Subset) *endpoint.ClusterLoadAssignment {
	byLocality := map[string][]*endpoint.LbEndpoint{}
	for i := range eps {
		ep := &eps[i]
		if !ep.Routable() || (subset != nil && !labelsMatch(subset.GetLabels(), ep.Labels)) {
			continue
		}
		port, ok := endpointPort(ep, p)
		if !ok {
			continue
		}
		byLocality[ep.Locality] = append(byLocality[ep.Locality], &endpoint.LbEndpoint{
			HostIdentifier: &endpoint.LbEndpoint_Endpoint{Endpoint: &endpoint.Endpoint{
				Address: socketAddress(ep.Address, port),
			}},
			HealthStatus:        core.HealthStatus_HEALTHY,
			LoadBalancingWeight: wrapperspb.UInt32(1),
			Metadata:            tlsModeMetadata(ep.Labels),
		})
	}
	cla := &endpoint.ClusterLoadAssignment{ClusterName: name}
	for _, loc := range slices.Sorted(maps.Keys(byLocality)) {
		lbs := byLocality[loc]
		sort.Slice(lbs, func(i, j int) bool {
			return lbs[i].GetEndpoint().GetAddress().GetSocketAddress().GetAddress() <
				lbs[j].GetEndpoint().GetAddress().GetSocketAddress().GetAddress()
		})
		cla.Endpoints = append(cla.Endpoints, &endpoint.LocalityLbEndpoints{
			Locality:    parseLocality(loc),
			LbEndpoints: lbs,
			// gRPC clients ignore localities without a weight.
			LoadBalancingWeight: wrapperspb.UInt32(uint32(len(lbs))),
		})
	}
	return cla
}

// endpointPort finds the endpoint's port for a service port, by port name;
// a single unnamed endpoint port serves a single-port service.
func endpointPort(ep *model.Endpoint, p model.Port) (uint32, bool) {
	if n, ok := ep.Ports[p.Name]; ok {
		return n, true
	}
	if len(ep.Ports) == 1 {
		if n, ok := ep.Ports[""]; ok {
			return n, true
		}
	}
	return 0, false
}

func labelsMatch(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// sameLabels reports whether an endpoint's labels are a workload's
// (labels, parsed from a scope): equal but for pod-template-hash, which
// scopes leave out (model.CanonicalLabels).
func sameLabels(ep, labels map[string]string) bool {
	n := 0
	for k, v := range ep {
		if k == "pod-template-hash" {
			continue
		}
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
		n++
	}
	return n == len(labels)
}

// parseLocality splits "region/zone/subzone".
func parseLocality(s string) *core.Locality {
	parts := strings.SplitN(s, "/", 3)
	l := &core.Locality{Region: parts[0]}
	if len(parts) > 1 {
		l.Zone = parts[1]
	}
	if len(parts) > 2 {
		l.SubZone = parts[2]
	}
	return l
}

func socketAddress(addr string, port uint32) *core.Address {
	return &core.Address{Address: &core.Address_SocketAddress{SocketAddress: &core.SocketAddress{
		Address: addr, PortSpecifier: &core.SocketAddress_PortValue{PortValue: port},
	}}}
}
