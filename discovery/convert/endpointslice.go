package convert

import (
	"net"

	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/meshd/meshd/internal/model"
)

// ServiceNameLabel is the EndpointSlice label naming the owning Service.
const ServiceNameLabel = "kubernetes.io/service-name"

// regionLabel is the node topology label that may be copied into an
// endpoint's deprecatedTopology.
const regionLabel = "topology.kubernetes.io/region"

// EndpointSlice converts an EndpointSlice into an EndpointSet with one
// Endpoint per address. Conditions follow Kubernetes defaults: a nil ready
// means ready, a nil serving means the same as ready, a nil terminating means
// not terminating. Only IPv4 and IPv6 slices are supported.
func EndpointSlice(es *discoveryv1.EndpointSlice) (*model.EndpointSet, error) {
	if es == nil {
		return nil, nilObject(model.KindEndpointSlice)
	}
	set, fe := endpointSet(es)
	if fe != nil {
		return nil, objectError(model.KindEndpointSlice, &es.ObjectMeta, fe)
	}
	return set, nil
}

func endpointSet(es *discoveryv1.EndpointSlice) (*model.EndpointSet, *fieldError) {
	if fe := checkMeta(&es.ObjectMeta, true); fe != nil {
		return nil, fe
	}
	svcName := es.Labels[ServiceNameLabel]
	if svcName == "" {
		return nil, errf(key("metadata.labels", ServiceNameLabel), "label is required: it names the Service the slice belongs to")
	}
	switch es.AddressType {
	case discoveryv1.AddressTypeIPv4, discoveryv1.AddressTypeIPv6:
	default:
		return nil, errf("addressType", "address type %q is not supported (want IPv4 or IPv6)", es.AddressType)
	}
	ports, fe := slicePorts(es.Ports)
	if fe != nil {
		return nil, fe
	}
	set := &model.EndpointSet{Name: es.Name, Namespace: es.Namespace, ServiceName: svcName}
	for i := range es.Endpoints {
		ep := &es.Endpoints[i]
		for j, addr := range ep.Addresses {
			if net.ParseIP(addr) == nil {
				return nil, errf(at(at("endpoints", i)+".addresses", j), "%q is not an IP address", addr)
			}
			set.Endpoints = append(set.Endpoints, endpoint(ep, addr, ports))
		}
	}
	return set, nil
}

func slicePorts(in []discoveryv1.EndpointPort) (map[string]uint32, *fieldError) {
	out := make(map[string]uint32, len(in))
	for i, p := range in {
		if p.Port == nil {
			continue // "all ports": nothing meshd can route to
		}
		if *p.Port < 1 || *p.Port > 65535 {
			return nil, errf(at("ports", i)+".port", "port %d is out of range 1-65535", *p.Port)
		}
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		out[name] = uint32(*p.Port)
	}
	return out, nil
}

// endpoint builds one model endpoint. The ports map is shared by every
// endpoint of the set; model values are never mutated.
func endpoint(ep *discoveryv1.Endpoint, addr string, ports map[string]uint32) model.Endpoint {
	ready := ep.Conditions.Ready == nil || *ep.Conditions.Ready
	serving := ready
	if ep.Conditions.Serving != nil {
		serving = *ep.Conditions.Serving
	}
	terminating := ep.Conditions.Terminating != nil && *ep.Conditions.Terminating
	out := model.Endpoint{
		Address: addr, Ports: ports, Locality: locality(ep),
		Ready: ready, Serving: serving, Terminating: terminating,
	}
	if ref := ep.TargetRef; ref != nil && ref.Kind == "Pod" {
		out.WorkloadName = ref.Name
	}
	return out
}

// locality returns "region/zone" in istiod's form, from the endpoint's zone
// and, when present, the region in its deprecated topology labels.
func locality(ep *discoveryv1.Endpoint) string {
	region := ep.DeprecatedTopology[regionLabel]
	zone := ""
	if ep.Zone != nil {
		zone = *ep.Zone
	}
	if zone == "" {
		return region
	}
	return region + "/" + zone
}
