package inject

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Names of what Inject adds, as istio's.
const (
	ProxyContainer      = "istio-proxy"
	InitContainer       = "istio-init"
	ValidationContainer = "istio-validation"
	ProxyUID            = 1337
)

// plan are the decisions Inject takes for one pod before building it.
type plan struct {
	s            Settings
	pod          *corev1.Pod // the pod being built (annotations as given)
	owner        owner
	native       bool
	mode         string // REDIRECT, TPROXY or NONE
	statusPort   string // pilot-agent's status port ("0": no probes)
	hold         bool   // holdApplicationUntilProxyStarts (not native)
	jobWrap      bool
	gateway      bool   // istio's gateway template (gateway.go)
	proxyConfig  string // PROXY_CONFIG
	metadata     map[string]string
	appNames     []string
	proxyImage   string
	agentLogging string
}

// anno returns the pod annotation name, else def.
func (p *plan) anno(name, def string) string {
	if v, ok := p.pod.Annotations[name]; ok {
		return v
	}
	return def
}

// resources is the proxy's requests and limits: only the resource
// annotations' when any is set, else istio's defaults.
func (p *plan) resources() corev1.ResourceRequirements {
	a := p.pod.Annotations
	set := func(l corev1.ResourceList, name corev1.ResourceName, key string) corev1.ResourceList {
		if v, ok := a[key]; ok {
			if l == nil {
				l = corev1.ResourceList{}
			}
			l[name] = resource.MustParse(v) // validated already
		}
		return l
	}
	var r corev1.ResourceRequirements
	r.Requests = set(set(nil, corev1.ResourceCPU, AnnoProxyCPU), corev1.ResourceMemory, AnnoProxyMemory)
	r.Limits = set(set(nil, corev1.ResourceCPU, AnnoProxyCPULimit), corev1.ResourceMemory, AnnoProxyMemoryLimit)
	if r.Requests != nil || r.Limits != nil {
		return r
	}
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2000m"), corev1.ResourceMemory: resource.MustParse("1024Mi")},
	}
}

// checkResources refuses requests above limits, which the API server
// would refuse with a message about the container rather than the
// annotations.
func checkResources(r corev1.ResourceRequirements) error {
	for _, x := range []struct {
		name       corev1.ResourceName
		req, limit string
	}{{corev1.ResourceCPU, AnnoProxyCPU, AnnoProxyCPULimit}, {corev1.ResourceMemory, AnnoProxyMemory, AnnoProxyMemoryLimit}} {
		req, okR := r.Requests[x.name]
		lim, okL := r.Limits[x.name]
		if okR && okL && req.Cmp(lim) > 0 {
			return Rejection(fmt.Sprintf("annotations %s %q and %s %q: the sidecar's %s request is above its limit",
				x.req, req.String(), x.limit, lim.String(), x.name))
		}
	}
	return nil
}

func fieldEnv(name, path string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}}
}

func resourceEnv(name, res string) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{
		Resource: res, Divisor: resource.MustParse("1")}}}
}

// podPorts is ISTIO_META_POD_PORTS: the app containers' ports as JSON.
func podPorts(cs []corev1.Container) string {
	ports := []corev1.ContainerPort{}
	for _, c := range cs {
		if c.Name != ProxyContainer {
			ports = append(ports, c.Ports...)
		}
	}
	b, _ := json.Marshal(ports)
	return string(b)
}

// proxyEnv is istio-proxy's environment, in the order of istio's template.
func (p *plan) proxyEnv() []corev1.EnvVar {
	s := p.s
	env := []corev1.EnvVar{
		{Name: "PILOT_CERT_PROVIDER", Value: "istiod"},
		{Name: "CA_ADDR", Value: s.DiscoveryAddress},
		fieldEnv("POD_NAME", "metadata.name"),
		fieldEnv("POD_NAMESPACE", "metadata.namespace"),
		fieldEnv("INSTANCE_IP", "status.podIP"),
		fieldEnv("SERVICE_ACCOUNT", "spec.serviceAccountName"),
		fieldEnv("HOST_IP", "status.hostIP"),
		resourceEnv("ISTIO_CPU_LIMIT", "limits.cpu"),
		{Name: "PROXY_CONFIG", Value: p.proxyConfig},
		{Name: "ISTIO_META_POD_PORTS", Value: podPorts(p.pod.Spec.Containers)},
		{Name: "ISTIO_META_APP_CONTAINERS", Value: strings.Join(p.appNames, ",")},
		resourceEnv("GOMEMLIMIT", "limits.memory"),
		{Name: "ISTIO_META_CLUSTER_ID", Value: firstOf(s.ClusterID, "Kubernetes")},
		fieldEnv("ISTIO_META_NODE_NAME", "spec.nodeName"),
		{Name: "ISTIO_META_INTERCEPTION_MODE", Value: p.mode},
	}
	if wl := firstOf(p.pod.Labels[LabelWorkloadName], p.owner.name); wl != "" {
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_WORKLOAD_NAME", Value: wl})
	}
	if uri := p.owner.uri(p.pod.Namespace); uri != "" {
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_OWNER", Value: uri})
	}
	if td := s.trustDomain(); td != "" {
		env = append(env, corev1.EnvVar{Name: "ISTIO_META_MESH_ID", Value: td}, corev1.EnvVar{Name: "TRUST_DOMAIN", Value: td})
	}
	return append(env, p.metadataEnv()...)
}

// metadataEnv is ProxyConfig.proxyMetadata as variables, sorted by name.
func (p *plan) metadataEnv() []corev1.EnvVar {
	var env []corev1.EnvVar
	for _, k := range sortedKeys(p.metadata) {
		env = append(env, corev1.EnvVar{Name: k, Value: p.metadata[k]})
	}
	return env
}

func httpProbe(path string, port int32) corev1.ProbeHandler {
	return corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: path, Port: intstr.FromInt32(port)}}
}

// atoi32 parses an annotation validated already.
func atoi32(v string) int32 {
	n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
	return int32(n)
}

// proxyContainer is the istio-proxy container.
func (p *plan) proxyContainer() corev1.Container {
	s := p.s
	c := corev1.Container{
		Name:  ProxyContainer,
		Image: p.proxyImage,
		Ports: []corev1.ContainerPort{{ContainerPort: 15090, Protocol: corev1.ProtocolTCP, Name: "http-envoy-prom"}},
		Args: []string{"proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc." + s.Domain,
			"--proxyLogLevel=" + p.anno(AnnoLogLevel, "warning"),
			"--proxyComponentLogLevel=" + p.anno(AnnoComponentLogLevel, "misc:error"),
			"--log_output_level=" + p.agentLogging},
		Env:       p.proxyEnv(),
		Resources: p.resources(),
	}
	if p.native {
		c.RestartPolicy = ptrTo(corev1.ContainerRestartPolicyAlways)
	}
	switch {
	case p.hold:
		c.Lifecycle = &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			Command: []string{"pilot-agent", "wait"}}}}
	case p.native:
		c.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
			Command: []string{"pilot-agent", "request", "--debug-port=" + p.statusPort, "POST", "drain"}}}}
	}
	if p.statusPort != "0" {
		c.StartupProbe = &corev1.Probe{ProbeHandler: httpProbe("/healthz/ready", 15021),
			PeriodSeconds: 1, TimeoutSeconds: 3, FailureThreshold: 600}
		c.ReadinessProbe = &corev1.Probe{ProbeHandler: httpProbe("/healthz/ready", 15021),
			InitialDelaySeconds: atoi32(p.anno(AnnoReadinessInitialDelay, "0")),
			PeriodSeconds:       atoi32(p.anno(AnnoReadinessPeriod, "15")),
			TimeoutSeconds:      3,
			FailureThreshold:    atoi32(p.anno(AnnoReadinessFailure, "4"))}
	}
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptrTo(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		Privileged:               ptrTo(false),
		ReadOnlyRootFilesystem:   ptrTo(true),
		RunAsNonRoot:             ptrTo(true),
		RunAsUser:                ptrTo[int64](ProxyUID),
		RunAsGroup:               ptrTo[int64](ProxyUID),
	}
	if p.mode == "TPROXY" {
		sc.Capabilities.Add = []corev1.Capability{"NET_ADMIN"}
		sc.RunAsNonRoot, sc.RunAsUser = ptrTo(false), ptrTo[int64](0)
	}
	c.SecurityContext = sc
	c.VolumeMounts = []corev1.VolumeMount{
		{Name: "workload-socket", MountPath: "/var/run/secrets/workload-spiffe-uds"},
		{Name: "credential-socket", MountPath: "/var/run/secrets/credential-uds"},
		{Name: "workload-certs", MountPath: "/var/run/secrets/workload-spiffe-credentials"},
		{Name: "istiod-ca-cert", MountPath: "/var/run/secrets/istio"},
		{Name: "istio-ca-crl", MountPath: "/var/run/secrets/istio/crl"},
		{Name: "istio-data", MountPath: "/var/lib/istio/data"},
		{Name: "istio-envoy", MountPath: "/etc/istio/proxy"},
		{Name: "istio-token", MountPath: "/var/run/secrets/tokens"},
		{Name: "istio-podinfo", MountPath: "/etc/istio/pod"},
	}
	return c
}

// excludeInboundPorts is the exclude list with the status port added, as
// istio's excludeInboundPort template function.
func excludeInboundPorts(statusPort, excluded string) string {
	statusPort = strings.TrimSpace(statusPort)
	if statusPort == "" || statusPort == "0" {
		return excluded
	}
	var out []string
	for _, port := range strings.Split(excluded, ",") {
		if port == statusPort {
			return excluded
		}
		if port = strings.TrimSpace(port); port != "" {
			out = append(out, port)
		}
	}
	return strings.Join(append(out, statusPort), ",")
}

// iptablesArgs are istio-iptables' arguments from the traffic annotations.
func (p *plan) iptablesArgs() []string {
	uid := strconv.Itoa(ProxyUID)
	args := []string{"istio-iptables", "-p", "15001", "-z", "15006", "-u", uid, "-m", p.mode,
		"-i", p.anno(AnnoIncludeOutboundIPs, "*"), "-x", p.anno(AnnoExcludeOutboundIPs, ""),
		"-b", p.anno(AnnoIncludeInboundPorts, "*"), "-d"}
	if ex := excludeInboundPorts(p.statusPort, p.anno(AnnoExcludeInboundPorts, "")); ex != "" {
		args = append(args, "15090,15021,"+ex)
	} else {
		args = append(args, "15090,15021")
	}
	if v, ok := p.pod.Annotations[AnnoIncludeOutboundPorts]; ok {
		args = append(args, "-q", v)
	}
	if v, ok := p.pod.Annotations[AnnoExcludeOutboundPorts]; ok {
		args = append(args, "-o", v)
	}
	if v, ok := p.pod.Annotations["istio.io/reroute-virtual-interfaces"]; ok {
		args = append(args, "-k", v)
	} else if v, ok := p.pod.Annotations[AnnoKubevirtInterfaces]; ok {
		args = append(args, "-k", v)
	}
	if v, ok := p.pod.Annotations[AnnoExcludeInterfaces]; ok {
		args = append(args, "-c", v)
	}
	args = append(args, "--log_output_level="+p.agentLogging)
	if p.s.CNI {
		args = append(args, "--run-validation", "--skip-rule-apply")
	}
	return args
}

// initContainer is istio-init (or, with CNI, istio-validation); ok is
// false with interception mode NONE.
func (p *plan) initContainer() (corev1.Container, bool) {
	if p.mode == "NONE" {
		return corev1.Container{}, false
	}
	c := corev1.Container{Name: InitContainer, Image: p.proxyImage, Args: p.iptablesArgs(),
		Env: p.metadataEnv(), Resources: p.resources()}
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptrTo(false),
		Privileged:               ptrTo(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	if p.s.CNI {
		c.Name = ValidationContainer
		uid := int64(ProxyUID)
		sc.ReadOnlyRootFilesystem, sc.RunAsGroup, sc.RunAsUser, sc.RunAsNonRoot =
			ptrTo(true), ptrTo(uid), ptrTo(uid), ptrTo(true)
	} else {
		sc.Capabilities.Add = []corev1.Capability{"NET_ADMIN", "NET_RAW"}
		sc.ReadOnlyRootFilesystem, sc.RunAsGroup, sc.RunAsNonRoot, sc.RunAsUser =
			ptrTo(false), ptrTo[int64](0), ptrTo(false), ptrTo[int64](0)
	}
	c.SecurityContext = sc
	return c, true
}

// proxyVolumes are the volumes istio-proxy mounts, in istio's order.
func proxyVolumes() []corev1.Volume {
	empty := func(name string) corev1.Volume {
		return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	}
	envoy := empty("istio-envoy")
	envoy.EmptyDir.Medium = corev1.StorageMediumMemory
	return []corev1.Volume{
		empty("workload-socket"),
		empty("credential-socket"),
		empty("workload-certs"),
		envoy,
		empty("istio-data"),
		{Name: "istio-podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
			Items: []corev1.DownwardAPIVolumeFile{
				{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}},
				{Path: "annotations", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations"}},
			}}}},
		{Name: "istio-token", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Path: "istio-token", ExpirationSeconds: ptrTo[int64](43200), Audience: "istio-ca"}}}}}},
		{Name: "istiod-ca-cert", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "istio-ca-root-cert"}}}},
		{Name: "istio-ca-crl", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: "istio-ca-crl"}, Optional: ptrTo(true)}}},
	}
}

func ptrTo[T any](v T) *T { return &v }

// sortedKeys returns m's keys in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
