package model

import (
	"sort"

	networking "istio.io/api/networking/v1"
)

// ServiceWithEndpoints pairs a service derived from a ServiceEntry with its
// static endpoints.
type ServiceWithEndpoints struct {
	Service   *Service
	Endpoints []Endpoint
}

// ServicesFromServiceEntry turns a ServiceEntry into one service per host, as
// istiod does. Endpoints come from spec.endpoints (STATIC) or, for DNS
// resolution without endpoints, from the host itself.
func ServicesFromServiceEntry(cfg *Config) []ServiceWithEndpoints {
	se, ok := cfg.Spec.(*networking.ServiceEntry)
	if !ok {
		return nil
	}
	ports := make([]Port, 0, len(se.GetPorts()))
	for _, p := range se.GetPorts() {
		proto := ParseProtocol(p.GetProtocol())
		if proto == ProtocolUnsupported {
			proto = ProtocolFromPortName(p.GetName())
		}
		ports = append(ports, Port{Name: p.GetName(), Port: p.GetNumber(),
			Protocol: GuessProtocol(proto, p.GetNumber()), TargetPort: p.GetTargetPort()})
	}
	sort.Slice(ports, func(i, j int) bool { return ports[i].Port < ports[j].Port })
	res := ResolutionEDS
	switch se.GetResolution() {
	case networking.ServiceEntry_DNS:
		res = ResolutionDNS
	case networking.ServiceEntry_DNS_ROUND_ROBIN:
		res = ResolutionDNSRoundRobin
	case networking.ServiceEntry_NONE:
		res = ResolutionPassthrough
	}
	var out []ServiceWithEndpoints
	for _, host := range se.GetHosts() {
		svc := &Service{
			Hostname: host, Name: host, Namespace: cfg.Namespace, Ports: ports,
			VIPs: se.GetAddresses(), Labels: cfg.Labels, ExportTo: se.GetExportTo(),
			MeshExternal: se.GetLocation() == networking.ServiceEntry_MESH_EXTERNAL,
			Resolution:   res, CreatedAt: cfg.CreatedAt, Origin: KindServiceEntry,
			Selector: se.GetWorkloadSelector().GetLabels(), EntryName: cfg.Name,
		}
		out = append(out, ServiceWithEndpoints{Service: svc, Endpoints: seEndpoints(se, host, ports, res)})
	}
	return out
}

func seEndpoints(se *networking.ServiceEntry, host string, ports []Port, res Resolution) []Endpoint {
	var out []Endpoint
	for _, we := range se.GetEndpoints() {
		ep := Endpoint{Address: we.GetAddress(), Labels: we.GetLabels(), Locality: we.GetLocality(),
			ServiceAccount: we.GetServiceAccount(), Ready: true, Serving: true, Ports: map[string]uint32{}}
		for _, p := range ports {
			n := targetOf(p)
			if v, ok := we.GetPorts()[p.Name]; ok {
				n = v
			}
			ep.Ports[p.Name] = n
		}
		out = append(out, ep)
	}
	if len(out) == 0 && (res == ResolutionDNS || res == ResolutionDNSRoundRobin) {
		ep := Endpoint{Address: host, Ready: true, Serving: true, Ports: map[string]uint32{}}
		for _, p := range ports {
			ep.Ports[p.Name] = p.Port
		}
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

func targetOf(p Port) uint32 {
	if p.TargetPort != 0 {
		return p.TargetPort
	}
	return p.Port
}

// workloadEntryEndpoints returns the endpoints of a ServiceEntry with a
// workloadSelector: the workloads (pods) of its namespace whose labels
// match, with an IP, on each port's targetPort (else the port number).
func workloadEntryEndpoints(svc *Service, workloads []*Workload) []Endpoint {
	var out []Endpoint
	for _, w := range workloads {
		if w.Namespace != svc.Namespace || w.IP == "" || !selects(svc.Selector, w.Labels) {
			continue
		}
		ep := Endpoint{Address: w.IP, Labels: w.Labels, ServiceAccount: w.ServiceAccount, Locality: w.Locality,
			WorkloadName: w.Name, Ready: true, Serving: true, Ports: map[string]uint32{}}
		for _, p := range svc.Ports {
			ep.Ports[p.Name] = targetOf(p)
		}
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

func selects(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}
