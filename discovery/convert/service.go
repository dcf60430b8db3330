package convert

import (
	"net"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshd/meshd/internal/model"
)

// DefaultDomain is the cluster DNS domain used when none is configured.
const DefaultDomain = "cluster.local"

// ExportToAnnotation is the Service annotation listing the namespaces the
// service is visible to, comma separated ("*" all, "." own namespace, "~"
// none, or namespace names). Without it the MeshConfig's
// defaultServiceExportTo applies (translate).
const ExportToAnnotation = "networking.istio.io/exportTo"

// Service converts a Kubernetes Service. Its hostname is
// "<name>.<namespace>.svc.<domain>" (domain defaults to DefaultDomain). UDP
// ports are left out, as istiod leaves them out. An ExternalName service
// becomes a DNS-resolved service without a selector.
func Service(svc *corev1.Service, domain string) (*model.Service, error) {
	if svc == nil {
		return nil, nilObject(model.KindService)
	}
	if fe := checkMeta(&svc.ObjectMeta, true); fe != nil {
		return nil, objectError(model.KindService, &svc.ObjectMeta, fe)
	}
	if domain == "" {
		domain = DefaultDomain
	}
	ports, fe := servicePorts(svc.Spec.Ports)
	if fe != nil {
		return nil, objectError(model.KindService, &svc.ObjectMeta, fe)
	}
	export := exportTo(svc.Annotations[ExportToAnnotation])
	if fe := validateExportTo(export, svc.Namespace, key("metadata.annotations", ExportToAnnotation), true); fe != nil {
		return nil, objectError(model.KindService, &svc.ObjectMeta, fe)
	}
	out := &model.Service{
		Hostname:  svc.Name + "." + svc.Namespace + ".svc." + domain,
		Name:      svc.Name,
		Namespace: svc.Namespace,
		Ports:     ports,
		VIPs:      clusterIPs(&svc.Spec),
		Labels:    svc.Labels,
		Selector:  svc.Spec.Selector,
		ExportTo:  export,
		CreatedAt: svc.CreationTimestamp.Time,
		Origin:    model.KindService,
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		out.Resolution = model.ResolutionDNS
		out.Selector = nil
	}
	return out, nil
}

func servicePorts(in []corev1.ServicePort) ([]model.Port, *fieldError) {
	out := make([]model.Port, 0, len(in))
	for i, p := range in {
		if p.Port < 1 || p.Port > 65535 {
			return nil, errf(at("spec.ports", i)+".port", "port %d is out of range 1-65535", p.Port)
		}
		if p.Protocol == corev1.ProtocolUDP {
			continue // istiod ignores UDP ports
		}
		mp := model.Port{Name: p.Name, Port: uint32(p.Port),
			Protocol: model.GuessProtocol(PortProtocol(p.Name, p.AppProtocol), uint32(p.Port))}
		if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal > 0 {
			mp.TargetPort = uint32(p.TargetPort.IntVal)
		}
		out = append(out, mp)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Port < out[j].Port })
	return out, nil
}

// PortProtocol chooses a Service port's protocol the way istiod does: from
// appProtocol when set (including Kubernetes' "kubernetes.io/h2c", "ws" and
// "wss" names), otherwise from the port name prefix ("http-web" is HTTP).
// It does not look at the transport protocol; callers drop UDP ports.
func PortProtocol(name string, appProtocol *string) model.Protocol {
	if appProtocol == nil {
		return model.ProtocolFromPortName(name)
	}
	switch *appProtocol {
	case "kubernetes.io/ws":
		return model.ProtocolHTTP
	case "kubernetes.io/wss":
		return model.ProtocolHTTPS
	}
	if p := model.ParseProtocol(*appProtocol); p != model.ProtocolUnsupported {
		return p
	}
	return model.ProtocolFromPortName(*appProtocol)
}

func clusterIPs(spec *corev1.ServiceSpec) []string {
	ips := spec.ClusterIPs
	if len(ips) == 0 && spec.ClusterIP != "" {
		ips = []string{spec.ClusterIP}
	}
	var out []string
	for _, ip := range ips {
		if ip != "" && ip != corev1.ClusterIPNone {
			out = append(out, ip)
		}
	}
	return out
}

func exportTo(annotation string) []string {
	var out []string
	for _, s := range strings.Split(annotation, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Pod converts a Pod into the workload its endpoints inherit labels and
// service account from. The service account defaults to "default".
func Pod(p *corev1.Pod) (*model.Workload, error) {
	if p == nil {
		return nil, nilObject(model.KindPod)
	}
	if fe := checkMeta(&p.ObjectMeta, true); fe != nil {
		return nil, objectError(model.KindPod, &p.ObjectMeta, fe)
	}
	if ip := p.Status.PodIP; ip != "" && net.ParseIP(ip) == nil {
		return nil, objectError(model.KindPod, &p.ObjectMeta, errf("status.podIP", "%q is not an IP address", ip))
	}
	sa := p.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	return &model.Workload{
		Name: p.Name, Namespace: p.Namespace, IP: p.Status.PodIP,
		Labels: p.Labels, ServiceAccount: sa,
	}, nil
}

// Namespace converts a Namespace.
func Namespace(ns *corev1.Namespace) *model.Namespace {
	if ns == nil {
		return nil
	}
	return &model.Namespace{Name: ns.Name, Labels: ns.Labels}
}
