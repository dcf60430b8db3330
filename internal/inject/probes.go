package inject

import (
	"encoding/json"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Probe rewriting, as istio's app_probe.go: the kubelet cannot pass the
// sidecar's mTLS, so each app probe (HTTP, TCP or gRPC) and HTTP/TCP
// lifecycle hook becomes an HTTP GET of pilot-agent's status port at
// /app-health/<container>/{readyz,livez,startupz} (or /app-lifecycle/...),
// and pilot-agent, told the originals in ISTIO_KUBE_APP_PROBERS, performs
// them from inside the pod.

// prober is one original probe, as pilot-agent reads it.
type prober struct {
	HTTPGet        *corev1.HTTPGetAction   `json:"httpGet,omitempty"`
	TCPSocket      *corev1.TCPSocketAction `json:"tcpSocket,omitempty"`
	GRPC           *corev1.GRPCAction      `json:"grpc,omitempty"`
	TimeoutSeconds int32                   `json:"timeoutSeconds,omitempty"`
}

func probeToProber(p *corev1.Probe) *prober {
	switch {
	case p == nil:
		return nil
	case p.HTTPGet != nil:
		return &prober{HTTPGet: p.HTTPGet.DeepCopy(), TimeoutSeconds: p.TimeoutSeconds}
	case p.TCPSocket != nil:
		return &prober{TCPSocket: p.TCPSocket.DeepCopy(), TimeoutSeconds: p.TimeoutSeconds}
	case p.GRPC != nil:
		return &prober{GRPC: p.GRPC.DeepCopy(), TimeoutSeconds: p.TimeoutSeconds}
	}
	return nil
}

func handlerToProber(h *corev1.LifecycleHandler) *prober {
	switch {
	case h == nil:
		return nil
	case h.HTTPGet != nil:
		return &prober{HTTPGet: h.HTTPGet.DeepCopy()}
	case h.TCPSocket != nil:
		return &prober{TCPSocket: h.TCPSocket.DeepCopy()}
	}
	return nil
}

// resolvePort turns a named port into its number; nil when the name is
// unknown or the probe already targets the status port.
func resolvePort(p *prober, ports map[string]int32, statusPort int32) *prober {
	if p == nil || p.GRPC != nil {
		return p
	}
	var port *intstr.IntOrString
	switch {
	case p.HTTPGet != nil:
		port = &p.HTTPGet.Port
	case p.TCPSocket != nil:
		port = &p.TCPSocket.Port
	default:
		return nil
	}
	if port.Type == intstr.String {
		n, ok := ports[port.StrVal]
		if !ok {
			return nil
		}
		*port = intstr.FromInt32(n)
	} else if port.IntVal == statusPort {
		return nil
	}
	return p
}

// appProbers is ISTIO_KUBE_APP_PROBERS for the pod's containers; "" when
// there is none.
func appProbers(cs []corev1.Container, statusPort int32) string {
	out := map[string]*prober{}
	for _, c := range cs {
		ports := map[string]int32{}
		for _, p := range c.Ports {
			if p.Name != "" {
				ports[p.Name] = p.ContainerPort
			}
		}
		add := func(url string, p *prober) {
			if p = resolvePort(p, ports, statusPort); p != nil {
				out[url] = p
			}
		}
		base := "/app-health/" + c.Name
		add(base+"/readyz", probeToProber(c.ReadinessProbe))
		add(base+"/livez", probeToProber(c.LivenessProbe))
		add(base+"/startupz", probeToProber(c.StartupProbe))
		if c.Lifecycle != nil {
			add("/app-lifecycle/"+c.Name+"/prestopz", handlerToProber(c.Lifecycle.PreStop))
			add("/app-lifecycle/"+c.Name+"/poststartz", handlerToProber(c.Lifecycle.PostStart))
		}
	}
	if len(out) == 0 {
		return ""
	}
	b, _ := json.Marshal(out) // map keys are sorted
	return string(b)
}

// toStatusPort rewrites a probe action to GET url on the status port (an
// HTTPS check becomes HTTP: pilot-agent does the HTTPS).
func toStatusPort(url string, port int32) *corev1.HTTPGetAction {
	return &corev1.HTTPGetAction{Path: url, Port: intstr.FromInt32(port)}
}

// toStatusPortGet points an HTTP GET at url on the status port (HTTPS
// becomes HTTP, as in toStatusPort).
func toStatusPortGet(g *corev1.HTTPGetAction, url string, port int32) {
	g.Path, g.Port = url, intstr.FromInt32(port)
	if g.Scheme == corev1.URISchemeHTTPS {
		g.Scheme = corev1.URISchemeHTTP
	}
}

func rewriteProbe(p *corev1.Probe, url string, port int32) {
	switch {
	case p == nil:
	case p.HTTPGet != nil:
		toStatusPortGet(p.HTTPGet, url, port)
	case p.TCPSocket != nil:
		p.TCPSocket, p.HTTPGet = nil, toStatusPort(url, port)
	case p.GRPC != nil:
		p.GRPC, p.HTTPGet = nil, toStatusPort(url, port)
	}
}

func rewriteHandler(h *corev1.LifecycleHandler, url string, port int32) {
	switch {
	case h == nil:
	case h.HTTPGet != nil:
		toStatusPortGet(h.HTTPGet, url, port)
	case h.TCPSocket != nil:
		h.TCPSocket, h.HTTPGet = nil, toStatusPort(url, port)
	}
}

// rewriteProbes points every app container's probes at the status port.
func rewriteProbes(cs []corev1.Container, port int32) {
	for i := range cs {
		c := &cs[i]
		if c.Name == ProxyContainer {
			continue
		}
		base := "/app-health/" + c.Name
		rewriteProbe(c.ReadinessProbe, base+"/readyz", port)
		rewriteProbe(c.LivenessProbe, base+"/livez", port)
		rewriteProbe(c.StartupProbe, base+"/startupz", port)
		if c.Lifecycle != nil {
			rewriteHandler(c.Lifecycle.PreStop, "/app-lifecycle/"+c.Name+"/prestopz", port)
			rewriteHandler(c.Lifecycle.PostStart, "/app-lifecycle/"+c.Name+"/poststartz", port)
		}
	}
}

// applyProbeRewrite rewrites the probes of the pod's app and init
// containers, and gives the proxy the originals; nothing when the status
// port is 0 or rewriting is off.
func (p *plan) applyProbeRewrite(pod *corev1.Pod, proxy *corev1.Container) {
	rewrite := p.s.RewriteAppProbes
	if v, ok := pod.Annotations[AnnoRewriteProbes]; ok {
		rewrite, _ = strconv.ParseBool(v) // validated already
	}
	port := atoi32(p.statusPort)
	if !rewrite || port == 0 {
		return
	}
	all := append(append([]corev1.Container{}, pod.Spec.InitContainers...), pod.Spec.Containers...)
	if probers := appProbers(all, port); probers != "" {
		proxy.Env = append(proxy.Env, corev1.EnvVar{Name: "ISTIO_KUBE_APP_PROBERS", Value: probers})
	}
	rewriteProbes(pod.Spec.InitContainers, port)
	rewriteProbes(pod.Spec.Containers, port)
}
