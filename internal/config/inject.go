package config

import (
	"errors"
	"fmt"
)

// Inject are the settings of the sidecar injection webhook (istiod's
// /inject on its HTTPS port 15017) and of the pods it mutates.
type Inject struct {
	// Address is the HTTPS listen address of the webhook ("off" disables
	// it; istiod: --httpsAddr :15017). It is served only with the secure
	// port on and a cluster watched.
	Address string
	// WebhookConfigName (INJECTION_WEBHOOK_CONFIG_NAME) is the
	// MutatingWebhookConfiguration whose caBundle meshd keeps set to the
	// mesh root; empty means istio-sidecar-injector[-REVISION][-NAMESPACE]
	// (the namespace outside istio-system), as istio's chart names it.
	WebhookConfigName string
	// Revision (REVISION) is the control plane revision: the istio.io/rev
	// value meshd injects for, and the suffix of its Service and webhook
	// configuration names. Empty is the default revision.
	Revision string
	// NativeSidecars (ENABLE_NATIVE_SIDECARS) is true, false or auto: auto
	// injects istio-proxy as a Kubernetes native sidecar when every node's
	// kubelet (or the pod's node's) is 1.33 or later, as istiod.
	NativeSidecars string
	// ProxyImage is the istio-proxy (and istio-init) image.
	ProxyImage string
	// MeshdImage holds the meshd binary that Job pods with
	// sidecar.meshd.io/jobWrap copy into the pod.
	MeshdImage string
	// CNI says traffic interception is set up by Istio's CNI plugin
	// (istio_cni.enabled): istio-validation instead of istio-init.
	CNI bool
	// FailurePolicy is what the webhook answers when injection fails for
	// an internal reason (not a bad pod): "closed" denies the pod, "open"
	// admits it unchanged.
	FailurePolicy string
	// DiscoveryAddress is the xDS and CA address injected proxies use;
	// empty means the mesh config's defaultConfig.discoveryAddress, else
	// istiod[-REVISION].NAMESPACE.svc:15012.
	DiscoveryAddress string
	// ClusterID (CLUSTER_ID) is the proxies' ISTIO_META_CLUSTER_ID.
	ClusterID string
	// RewriteAppProbes rewrites app containers' HTTP, TCP and gRPC probes to
	// go through pilot-agent's status port, as istio's
	// sidecarInjectorWebhook.rewriteAppHTTPProbe.
	RewriteAppProbes bool
}

// Native sidecar modes (ENABLE_NATIVE_SIDECARS values).
const (
	NativeSidecarsTrue  = "true"
	NativeSidecarsFalse = "false"
	NativeSidecarsAuto  = "auto"
)

// Failure policies of the injection webhook.
const (
	FailClosed = "closed"
	FailOpen   = "open"
)

// DefaultProxyImage is the istio-proxy image injected unless --proxy-image
// says otherwise: Istio's proxyv2 of a release meshd is tested with.
const DefaultProxyImage = "docker.io/istio/proxyv2:1.29.6"

// DefaultMeshdImage is the image Job pods copy the meshd binary from.
const DefaultMeshdImage = "ghcr.io/meshd/meshd:latest"

// defaultInject returns the Inject defaults (istiod's where it has them).
func defaultInject() Inject {
	return Inject{
		Address:          ":15017",
		NativeSidecars:   NativeSidecarsAuto,
		ProxyImage:       DefaultProxyImage,
		MeshdImage:       DefaultMeshdImage,
		FailurePolicy:    FailClosed,
		ClusterID:        "Kubernetes",
		RewriteAppProbes: true,
	}
}

// injectOptions are the injection webhook's settings, bound to s.
func injectOptions(s *Inject) []option {
	return []option{
		{flag: "injector-address", arg: "ADDR", env: "MESHD_INJECTOR_ADDRESS", value: stringValue{p: &s.Address},
			usage: "HTTPS listen address of the sidecar injection webhook (path /inject; istiod's Service maps 443 to " +
				"15017), with the secure port's serving certificate; served only when the secure port is on and a " +
				"cluster is watched; off disables it", istiod: "--httpsAddr :15017"},
		{flag: "injection-webhook-config-name", arg: "NAME", env: "INJECTION_WEBHOOK_CONFIG_NAME",
			value: stringValue{p: &s.WebhookConfigName}, def: "istio-sidecar-injector[-REVISION][-NS outside istio-system]",
			usage: "MutatingWebhookConfiguration whose webhooks' caBundle meshd keeps set to the mesh root " +
				"(needs get, list, watch and patch on mutatingwebhookconfigurations)",
			istiod: "INJECTION_WEBHOOK_CONFIG_NAME"},
		{flag: "revision", arg: "REV", env: "REVISION", value: stringValue{p: &s.Revision}, def: "none: the default revision",
			usage: "control plane revision: injects pods selected by istio.io/rev=REV (else istio-injection=enabled), " +
				"names istiod-REV as their discovery address", istiod: "REVISION"},
		{flag: "native-sidecars", arg: "MODE", env: "ENABLE_NATIVE_SIDECARS",
			value: stringValue{p: &s.NativeSidecars, choices: []string{NativeSidecarsTrue, NativeSidecarsFalse, NativeSidecarsAuto}},
			usage: "inject istio-proxy as a Kubernetes native sidecar (an init container with restartPolicy Always): " +
				"true, false, or auto (when every node's kubelet, or the pod's node's, is 1.33 or later); the pod " +
				"annotation sidecar.istio.io/nativeSidecar overrides it", istiod: "ENABLE_NATIVE_SIDECARS, same default"},
		{flag: "proxy-image", arg: "IMAGE", value: stringValue{p: &s.ProxyImage},
			usage: "image of the injected istio-proxy and istio-init containers (Istio's proxyv2); the pod annotation " +
				"sidecar.istio.io/proxyImage overrides it", istiod: "values global.hub/global.proxy.image:global.tag"},
		{flag: "meshd-image", arg: "IMAGE", value: stringValue{p: &s.MeshdImage},
			usage: "image holding /usr/local/bin/meshd and cp, copied into Job pods annotated " +
				"sidecar.meshd.io/jobWrap: \"true\" so their command runs under `meshd job-wrap`"},
		{flag: "cni", value: boolValue{p: &s.CNI},
			usage: "Istio's CNI plugin sets up traffic interception: inject the istio-validation init container " +
				"(no NET_ADMIN) and the traffic annotations the plugin reads, instead of istio-init",
			istiod: "values istio_cni.enabled / pilot.cni.enabled"},
		{flag: "injector-failure-policy", arg: "POLICY",
			value: stringValue{p: &s.FailurePolicy, choices: []string{FailClosed, FailOpen}},
			usage: "when injection fails for an internal reason: closed denies the pod (as istiod), open admits it " +
				"without a sidecar; a pod with a bad annotation is always denied", istiod: "istiod denies"},
		{flag: "injector-discovery-address", arg: "HOST:PORT", value: stringValue{p: &s.DiscoveryAddress},
			def:    "mesh defaultConfig.discoveryAddress, else istiod[-REVISION].NS.svc:15012",
			usage:  "xDS and CA address of injected proxies (PROXY_CONFIG discoveryAddress and CA_ADDR)",
			istiod: "MeshConfig defaultConfig.discoveryAddress"},
		{flag: "cluster-id", arg: "ID", env: "CLUSTER_ID", value: stringValue{p: &s.ClusterID},
			usage: "cluster name injected proxies report (ISTIO_META_CLUSTER_ID)", istiod: "CLUSTER_ID, same default"},
		{flag: "rewrite-app-probes", value: boolValue{p: &s.RewriteAppProbes},
			usage: "rewrite app containers' HTTP, TCP and gRPC probes to pilot-agent's status port (/app-health/...), " +
				"so they work under mTLS; the pod annotation sidecar.istio.io/rewriteAppHTTPProbers overrides it",
			istiod: "values sidecarInjectorWebhook.rewriteAppHTTPProbe, same default"},
	}
}

// InjectorEnabled reports whether the injection webhook is served (it also
// needs the secure port and a cluster).
func (s Inject) InjectorEnabled() bool { return s.Address != "" && s.Address != Off }

// WebhookConfig returns the MutatingWebhookConfiguration's name for meshd
// in namespace ns: WebhookConfigName, else what istio's chart sets
// INJECTION_WEBHOOK_CONFIG_NAME to, istio-sidecar-injector[-REVISION],
// with "-NS" outside istio-system.
func (s Inject) WebhookConfig(ns string) string {
	if s.WebhookConfigName != "" {
		return s.WebhookConfigName
	}
	n := "istio-sidecar-injector"
	if s.Revision != "" {
		n += "-" + s.Revision
	}
	if ns != "" && ns != "istio-system" {
		n += "-" + ns
	}
	return n
}

// Discovery returns the discovery address of injected proxies when it is
// set or can be derived: the flag, else meshDefault (the mesh config's
// defaultConfig.discoveryAddress), else istiod[-REVISION].ns.svc:15012.
func (s Inject) Discovery(ns, meshDefault string) string {
	switch {
	case s.DiscoveryAddress != "":
		return s.DiscoveryAddress
	case meshDefault != "":
		return meshDefault
	}
	name := "istiod"
	if s.Revision != "" {
		name += "-" + s.Revision
	}
	return fmt.Sprintf("%s.%s.svc:15012", name, ns)
}

// check refuses injection settings that cannot work.
func (s Inject) check() error {
	if s.InjectorEnabled() && s.ProxyImage == "" {
		return errors.New("--proxy-image is empty: the injector needs an istio-proxy image")
	}
	return nil
}
