package inject

import (
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Input is what Inject decides on: a pod as the API server sends it in an
// AdmissionReview (its namespace filled in) and, optionally, the labels of
// its namespace.
type Input struct {
	Pod *corev1.Pod
	// NamespaceLabels, when not nil, are checked as the webhook
	// configuration's selectors would; nil means the selectors have chosen
	// the pod already (the webhook's case).
	NamespaceLabels map[string]string
}

// Result is Inject's answer for a pod that is not rejected.
type Result struct {
	// Injected reports whether the pod gets a sidecar.
	Injected bool
	// Reason says why it does not, for logs.
	Reason string
	// Patch is the JSONPatch to apply; nil when the pod is unchanged.
	Patch []byte
	// Pod is the pod after the patch.
	Pod *corev1.Pod
}

// Rejection is the error of a pod that must not be admitted as it is (a
// bad annotation, a Job container that cannot be wrapped): its text is the
// admission message, naming the annotation and the value.
type Rejection string

func (r Rejection) Error() string { return string(r) }

// Inject decides whether in.Pod gets an istio-proxy sidecar under s, and
// returns the patch that adds it. It is a pure function: the same input
// gives the same bytes. A pod already injected (sidecar.istio.io/status)
// is returned unchanged, so injecting twice changes nothing; an
// istio-proxy container the pod brings without it is a template to fill
// (istio's gateway chart; customisation of the sidecar). A pod whose annotations are invalid or unsupported is
// a Rejection.
func Inject(in Input, s Settings) (Result, error) {
	pod := in.Pod.DeepCopy()
	if alreadyInjected(pod) {
		return Result{Reason: "already injected", Pod: pod}, nil
	}
	if ok, why := selected(pod, in.NamespaceLabels, s.Revision); !ok {
		return Result{Reason: why, Pod: pod}, nil
	}
	if err := validateAnnotations(pod.Annotations); err != nil {
		return Result{}, err
	}
	p, err := newPlan(pod, s)
	if err != nil {
		return Result{}, err
	}
	out, err := p.build()
	if err != nil {
		return Result{}, err
	}
	patch, err := createPatch(in.Pod, out)
	if err != nil {
		return Result{}, err
	}
	return Result{Injected: true, Patch: patch, Pod: out}, nil
}

// newPlan takes the decisions for pod (a copy Inject may change).
func newPlan(pod *corev1.Pod, s Settings) (*plan, error) {
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pc, err := proxyConfigFor(pod.Annotations, s)
	if err != nil {
		return nil, err
	}
	js, err := proxyConfigJSON(pc)
	if err != nil {
		return nil, err
	}
	p := &plan{s: s, pod: pod, owner: ownerOf(pod), proxyConfig: js, metadata: pc.GetProxyMetadata(),
		proxyImage: s.ProxyImage}
	p.native = s.NativeSidecars
	if v, ok := pod.Annotations[AnnoNativeSidecar]; ok {
		p.native, _ = strconv.ParseBool(v)
	}
	p.mode = p.anno(AnnoInterceptionMode, pc.GetInterceptionMode().String())
	p.statusPort = p.anno(AnnoStatusPort, strconv.Itoa(int(pc.GetStatusPort())))
	p.hold = pc.GetHoldApplicationUntilProxyStarts().GetValue() && !p.native
	p.gateway = strings.TrimSpace(p.anno(AnnoInjectTemplates, templateSidecar)) == templateGateway
	p.jobWrap = p.anno(AnnoJobWrap, "false") == "true" && !p.native && !p.gateway
	p.agentLogging = p.anno(AnnoAgentLogLevel, "default:info")
	if img := pod.Annotations[AnnoProxyImage]; strings.Contains(img, "/") {
		p.proxyImage = img
	}
	for _, c := range pod.Spec.Containers {
		if c.Name != ProxyContainer {
			p.appNames = append(p.appNames, c.Name)
		}
	}
	if err := checkResources(p.resources()); err != nil {
		return nil, err
	}
	return p, nil
}

// build returns the injected pod.
func (p *plan) build() (*corev1.Pod, error) {
	if p.gateway {
		return p.buildGateway(), nil
	}
	pod := p.pod
	st := injectionStatus{Revision: p.s.revisionName()}
	proxy := p.proxyContainer()
	var front, back []corev1.Container // init containers before and after the pod's own
	initC, hasInit := p.initContainer()
	switch {
	case p.native && hasInit:
		front = append(front, initC, proxy)
		st.InitContainers = []string{initC.Name, ProxyContainer}
	case p.native:
		front = append(front, proxy)
		st.InitContainers = []string{ProxyContainer}
	case hasInit && p.s.CNI: // validation first, to block the pod's init containers until CNI is set up
		front = append(front, initC)
		st.InitContainers = []string{initC.Name}
	case hasInit: // iptables last, so the pod's init containers are not intercepted
		back = append(back, initC)
		st.InitContainers = []string{initC.Name}
	}
	if !p.native {
		st.Containers = []string{ProxyContainer}
	}
	volumes := proxyVolumes()
	if p.jobWrap {
		wrapC, wrapV, err := p.applyJobWrap(pod.Spec.Containers)
		if err != nil {
			return nil, err
		}
		front = append(front, wrapC)
		volumes = append(volumes, wrapV)
		st.InitContainers = append(st.InitContainers, JobWrapContainer)
	}
	for _, v := range volumes {
		st.Volumes = append(st.Volumes, v.Name)
	}
	p.applyMetadata()
	if p.s.prometheusMerge() && p.anno(AnnoMergeMetrics, "true") != "false" {
		prometheusMerge(pod, &proxy, strconv.Itoa(int(p.s.meshStatusPort())))
	}
	p.applyProbeRewrite(pod, &proxy)
	if i := findContainer(pod.Spec.Containers, ProxyContainer); i >= 0 {
		// The pod's own istio-proxy container customises the injected one
		// (istio merges them, the pod's fields winning).
		proxy = overlayContainer(proxy, pod.Spec.Containers[i])
		pod.Spec.Containers = append(pod.Spec.Containers[:i:i], pod.Spec.Containers[i+1:]...)
	}
	// The proxy's place: last, so kubectl defaults to the app, unless the
	// app must wait for it (first); an init container when native.
	if p.native {
		front[findContainer(front, ProxyContainer)] = proxy
	} else if p.hold {
		pod.Spec.Containers = append([]corev1.Container{proxy}, pod.Spec.Containers...)
	} else {
		pod.Spec.Containers = append(pod.Spec.Containers, proxy)
	}
	inits := append(append(front, pod.Spec.InitContainers...), back...)
	pod.Spec.InitContainers = inits
	pod.Spec.Volumes = append(pod.Spec.Volumes, volumes...)
	pod.Annotations[AnnoStatus] = st.String()
	return pod, nil
}

// applyMetadata sets the labels and annotations istio's template sets.
func (p *plan) applyMetadata() {
	l, a := p.pod.Labels, p.pod.Annotations
	l[LabelTLSMode] = firstOf(l[LabelTLSMode], "istio")
	l[LabelCanonicalNm] = canonicalName(l, p.owner)
	l[LabelCanonicalRev] = canonicalRevision(l)
	a[AnnoRev] = p.s.revisionName()
	if len(p.appNames) > 0 {
		for _, k := range []string{"kubectl.kubernetes.io/default-logs-container", "kubectl.kubernetes.io/default-container"} {
			if _, ok := a[k]; !ok {
				a[k] = p.appNames[0]
			}
		}
	}
	if !p.s.CNI {
		return
	}
	// What istio's CNI plugin reads to set up the pod's iptables.
	a[AnnoInterceptionMode] = p.mode
	if v := p.anno(AnnoIncludeOutboundIPs, "*"); v != "" {
		a[AnnoIncludeOutboundIPs] = v
	}
	if v := p.anno(AnnoExcludeOutboundIPs, ""); v != "" {
		a[AnnoExcludeOutboundIPs] = v
	}
	a[AnnoIncludeInboundPorts] = p.anno(AnnoIncludeInboundPorts, "*")
	a[AnnoExcludeInboundPorts] = excludeInboundPorts(p.statusPort, p.anno(AnnoExcludeInboundPorts, ""))
}

// String describes a result for logs.
func (r Result) String() string {
	if r.Injected {
		return fmt.Sprintf("injected (%d-byte patch)", len(r.Patch))
	}
	return "not injected: " + r.Reason
}
