package manifest

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Ports of meshd's pod, as istiod's.
const (
	PortXDS        = 15010 // plaintext ADS
	PortSecureXDS  = 15012 // ADS and the CA service over TLS
	PortMonitoring = 15014 // /ready, /metrics, /debug
	PortWebhook    = 15017 // the injection webhook (Service port 443)
)

// MeshdPath is where meshd's image holds the binary (the injector copies
// it from there into Job pods, too).
const MeshdPath = "/usr/local/bin/meshd"

// Label keys and values istiod's tooling selects by.
const (
	labelName     = "app.kubernetes.io/name"
	labelRev      = "istio.io/rev"
	labelApp      = "app"
	labelIstio    = "istio"
	labelInject   = "sidecar.istio.io/inject"
	nameMeshd     = "meshd"
	appIstiod     = "istiod"
	containerName = "discovery" // istiod's, which istioctl and dashboards use
)

// meta is the metadata of a namespaced object.
func (o Options) meta(name string) metav1.ObjectMeta {
	m := o.clusterMeta(name)
	m.Namespace = o.Namespace
	return m
}

// clusterMeta is the metadata of a cluster-scoped object.
func (o Options) clusterMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Labels: map[string]string{labelName: nameMeshd, labelRev: o.RevisionLabel()}}
}

// istioLabel is istiod's "istio" label on its pods: pilot for the default
// revision (the istiod Service selects it), istiod for another.
func (o Options) istioLabel() string {
	if o.Revision == "" {
		return "pilot"
	}
	return "istiod"
}

// selector selects meshd's pods, and no istiod's.
func (o Options) selector() map[string]string {
	return map[string]string{labelName: nameMeshd, labelRev: o.RevisionLabel()}
}

// serviceSelector is istiod's Service selector, which meshd's pods match
// too: applied over istiod's Service it selects both until istiod is gone.
func (o Options) serviceSelector() map[string]string {
	if o.Revision == "" {
		return map[string]string{labelApp: appIstiod, labelIstio: "pilot"}
	}
	return map[string]string{labelApp: appIstiod, labelRev: o.Revision}
}

func (o Options) podLabels() map[string]string {
	return map[string]string{labelName: nameMeshd, labelRev: o.RevisionLabel(), labelApp: appIstiod,
		labelIstio: o.istioLabel(), labelInject: "false"}
}

// DefaultMeshConfig is the mesh ConfigMap's key "mesh" without --mesh-config.
func (o Options) DefaultMeshConfig() string {
	return fmt.Sprintf(`# MeshConfig (istio.io/api mesh/v1alpha1), read by meshd as by istiod.
rootNamespace: %s
trustDomain: %s
defaultConfig:
  discoveryAddress: %s
`, o.Namespace, o.TrustDomain, o.DiscoveryAddress())
}

func (o Options) meshConfig() string {
	if o.MeshConfig != "" {
		return o.MeshConfig
	}
	return o.DefaultMeshConfig()
}

func (o Options) meshConfigMap() *corev1.ConfigMap {
	m := o.meta(o.MeshConfigMapName())
	m.Labels[labelApp] = appIstiod
	return &corev1.ConfigMap{TypeMeta: typeMeta("v1", "ConfigMap"), ObjectMeta: m,
		Data: map[string]string{"mesh": o.meshConfig()}}
}

func (o Options) service() *corev1.Service {
	m := o.meta(o.ServiceName())
	m.Labels[labelApp], m.Labels[labelIstio] = appIstiod, "pilot"
	port := func(name string, port, target int32) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Port: port, TargetPort: intstr.FromInt32(target), Protocol: corev1.ProtocolTCP}
	}
	return &corev1.Service{TypeMeta: typeMeta("v1", "Service"), ObjectMeta: m, Spec: corev1.ServiceSpec{
		Ports: []corev1.ServicePort{ // istiod's names
			port("grpc-xds", PortXDS, PortXDS),
			port("https-dns", PortSecureXDS, PortSecureXDS),
			port("https-webhook", 443, PortWebhook),
			port("http-monitoring", PortMonitoring, PortMonitoring),
		},
		Selector: o.serviceSelector(),
	}}
}

// Args are meshd's arguments in the Deployment: what differs from `meshd
// serve`'s defaults in a pod. The namespace comes from $POD_NAMESPACE.
func (o Options) Args() []string {
	args := []string{"serve", fmt.Sprintf("--admin-address=:%d", PortMonitoring),
		// Job pods annotated sidecar.meshd.io/jobWrap copy meshd from its image.
		"--meshd-image=" + o.Image}
	if o.ProxyImage != "" {
		args = append(args, "--proxy-image="+o.ProxyImage)
	}
	if o.TrustDomain != DefaultTrustDomain {
		args = append(args, "--trust-domain="+o.TrustDomain)
	}
	if o.Revision != "" {
		// The revision's ConfigMap, injection selector and webhook
		// configuration, and its Service's name in the serving certificate.
		args = append(args, "--revision="+o.Revision, "--mesh-configmap="+o.MeshConfigMapName(),
			"--custom-host="+o.ServiceName()+"."+o.Namespace+".svc")
	}
	return args
}

func (o Options) resources() corev1.ResourceRequirements {
	list := func(cpu, mem string) corev1.ResourceList {
		l := corev1.ResourceList{}
		if cpu != "" {
			l[corev1.ResourceCPU] = resource.MustParse(cpu)
		}
		if mem != "" {
			l[corev1.ResourceMemory] = resource.MustParse(mem)
		}
		if len(l) == 0 {
			return nil
		}
		return l
	}
	return corev1.ResourceRequirements{Requests: list(o.RequestsCPU, o.RequestsMemory),
		Limits: list(o.LimitsCPU, o.LimitsMemory)}
}

func (o Options) container() corev1.Container {
	port := func(name string, p int32) corev1.ContainerPort {
		return corev1.ContainerPort{Name: name, ContainerPort: p, Protocol: corev1.ProtocolTCP}
	}
	no, yes, nobody := false, true, int64(65532)
	return corev1.Container{
		Name: containerName, Image: o.Image, Command: []string{MeshdPath}, Args: o.Args(),
		Ports: []corev1.ContainerPort{ // istiod's names
			port("grpc-xds", PortXDS), port("tls-xds", PortSecureXDS),
			port("https-webhooks", PortWebhook), port("http-monitoring", PortMonitoring),
		},
		Env: []corev1.EnvVar{{Name: "POD_NAMESPACE", ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: "/ready", Port: intstr.FromInt32(PortMonitoring)}},
			InitialDelaySeconds: 1, PeriodSeconds: 3, TimeoutSeconds: 5,
		},
		Resources: o.resources(),
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes, RunAsNonRoot: &yes,
			RunAsUser: &nobody, RunAsGroup: &nobody,
			Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
	}
}

func (o Options) deployment() *appsv1.Deployment {
	m := o.meta(o.ServiceAccountName())
	m.Labels[labelApp], m.Labels[labelIstio] = appIstiod, o.istioLabel()
	replicas := o.Replicas
	surge, unavailable := intstr.FromString("100%"), intstr.FromString("25%") // istiod's
	return &appsv1.Deployment{TypeMeta: typeMeta("apps/v1", "Deployment"), ObjectMeta: m, Spec: appsv1.DeploymentSpec{
		Replicas: &replicas,
		Selector: &metav1.LabelSelector{MatchLabels: o.selector()},
		Strategy: appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &surge, MaxUnavailable: &unavailable}},
		Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: o.podLabels(), Annotations: map[string]string{
				"prometheus.io/port": fmt.Sprint(PortMonitoring), "prometheus.io/scrape": "true", labelInject: "false"}},
			Spec: corev1.PodSpec{
				ServiceAccountName: o.ServiceAccountName(),
				Containers:         []corev1.Container{o.container()},
				Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
					PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
						Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{
							LabelSelector: &metav1.LabelSelector{MatchLabels: o.selector()},
							TopologyKey:   corev1.LabelHostname}}}}},
				Tolerations: []corev1.Toleration{{Key: "cni.istio.io/not-ready", Operator: corev1.TolerationOpExists}},
				SecurityContext: &corev1.PodSecurityContext{
					SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
			},
		},
	}}
}

// podDisruptionBudget keeps one replica through voluntary disruptions
// (node drains). It is nil with one replica, whose PDB would block drains.
func (o Options) podDisruptionBudget() *policyv1.PodDisruptionBudget {
	if o.Replicas < 2 {
		return nil
	}
	one := intstr.FromInt32(1)
	return &policyv1.PodDisruptionBudget{TypeMeta: typeMeta("policy/v1", "PodDisruptionBudget"),
		ObjectMeta: o.meta(o.ServiceAccountName()), Spec: policyv1.PodDisruptionBudgetSpec{
			MinAvailable: &one, Selector: &metav1.LabelSelector{MatchLabels: o.selector()}}}
}
