package inject

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Istio's injection templates a pod may ask for with
// inject.istio.io/templates. Istio's gateway Helm chart creates gateway
// pods with "gateway" and an istio-proxy container of image "auto" that
// the injector fills in: istiod's gateway template (a router proxy: `proxy
// router`, no traffic interception, no init container, privileged ports
// allowed by sysctl). Custom templates are refused.
const (
	templateSidecar = "sidecar"
	templateGateway = "gateway"
	// autoImage is the placeholder image of the gateway chart's container.
	autoImage = "auto"
)

// validTemplates accepts istio's two built-in templates.
func validTemplates(v string) error {
	switch strings.TrimSpace(v) {
	case templateSidecar, templateGateway:
		return nil
	}
	return fmt.Errorf(`want "sidecar" or "gateway" (istio's built-in templates); custom injection templates are not supported by meshd`)
}

// buildGateway returns the pod with istiod's gateway template applied:
// the pod's own istio-proxy container (the chart's) filled in — its
// fields win over the template's, its image unless "auto" — or a new one.
func (p *plan) buildGateway() *corev1.Pod {
	pod := p.pod
	proxy := p.proxyContainer()
	proxy.Args[1] = "router"
	proxy.StartupProbe = nil // the gateway template has a readiness probe only
	if i := findContainer(pod.Spec.Containers, ProxyContainer); i >= 0 {
		pod.Spec.Containers[i] = overlayContainer(proxy, pod.Spec.Containers[i])
	} else {
		pod.Spec.Containers = append(pod.Spec.Containers, proxy)
	}
	volumes := proxyVolumes()
	st := injectionStatus{Revision: p.s.revisionName(), Containers: []string{ProxyContainer}}
	for _, v := range volumes {
		st.Volumes = append(st.Volumes, v.Name)
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, volumes...)
	l, a := pod.Labels, pod.Annotations
	l[LabelCanonicalNm] = canonicalName(l, p.owner)
	l[LabelCanonicalRev] = canonicalRevision(l)
	a[AnnoRev] = p.s.revisionName()
	if pod.Spec.SecurityContext == nil {
		pod.Spec.SecurityContext = &corev1.PodSecurityContext{}
	}
	if len(pod.Spec.SecurityContext.Sysctls) == 0 {
		// Envoy binds 80 and 443 as uid 1337.
		pod.Spec.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "net.ipv4.ip_unprivileged_port_start", Value: "0"}}
	}
	a[AnnoStatus] = st.String()
	return pod
}

// overlayContainer is gen with the fields user sets, as istio merges a
// pod's own istio-proxy container over the template's: image (unless
// "auto"), args, env by name, ports by number, volume mounts by path,
// resources, probes, lifecycle, security context, pull policy.
func overlayContainer(gen, user corev1.Container) corev1.Container {
	out := gen
	if user.Image != "" && user.Image != autoImage {
		out.Image = user.Image
	}
	if len(user.Args) > 0 {
		out.Args = user.Args
	}
	out.Env = mergeEnv(gen.Env, user.Env)
	for _, up := range user.Ports {
		if !hasPort(out.Ports, up.ContainerPort) {
			out.Ports = append(out.Ports, up)
		}
	}
	for _, um := range user.VolumeMounts {
		if !hasMount(out.VolumeMounts, um.MountPath) {
			out.VolumeMounts = append(out.VolumeMounts, um)
		}
	}
	if len(user.Resources.Requests)+len(user.Resources.Limits) > 0 {
		out.Resources = user.Resources
	}
	if user.ReadinessProbe != nil {
		out.ReadinessProbe = user.ReadinessProbe
	}
	if user.LivenessProbe != nil {
		out.LivenessProbe = user.LivenessProbe
	}
	if user.StartupProbe != nil {
		out.StartupProbe = user.StartupProbe
	}
	if user.Lifecycle != nil {
		out.Lifecycle = user.Lifecycle
	}
	if user.SecurityContext != nil {
		out.SecurityContext = user.SecurityContext
	}
	if user.ImagePullPolicy != "" {
		out.ImagePullPolicy = user.ImagePullPolicy
	}
	return out
}

// mergeEnv is base with over's variables replacing those of the same name
// and the others appended, in over's order.
func mergeEnv(base, over []corev1.EnvVar) []corev1.EnvVar {
	out := append([]corev1.EnvVar{}, base...)
	for _, e := range over {
		replaced := false
		for i := range out {
			if out[i].Name == e.Name {
				out[i], replaced = e, true
				break
			}
		}
		if !replaced {
			out = append(out, e)
		}
	}
	return out
}

func hasPort(ps []corev1.ContainerPort, port int32) bool {
	for _, p := range ps {
		if p.ContainerPort == port {
			return true
		}
	}
	return false
}

func hasMount(ms []corev1.VolumeMount, path string) bool {
	for _, m := range ms {
		if m.MountPath == path {
			return true
		}
	}
	return false
}
