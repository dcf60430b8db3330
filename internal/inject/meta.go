package inject

import (
	"encoding/json"
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// owner is the workload a pod belongs to, as istio's GetDeployMetaFromPod:
// its controller (a Deployment through its ReplicaSet, a CronJob through
// its Job), else the pod itself.
type owner struct {
	name, kind, apiVersion string
}

var cronJobName = regexp.MustCompile(`^(.+)-\d{8,10}$`)

func ownerOf(pod *corev1.Pod) owner {
	o := owner{name: pod.Name, kind: "Pod", apiVersion: "v1"}
	if pod.GenerateName == "" {
		return o
	}
	for _, ref := range pod.OwnerReferences {
		if ref.Controller == nil || !*ref.Controller {
			continue
		}
		o = owner{name: ref.Name, kind: ref.Kind, apiVersion: ref.APIVersion}
		hash := pod.Labels["pod-template-hash"]
		switch {
		case ref.Kind == "ReplicaSet" && hash != "" && strings.HasSuffix(ref.Name, hash):
			o.name, o.kind = strings.TrimSuffix(ref.Name, "-"+hash), "Deployment"
		case ref.Kind == "Job":
			if m := cronJobName.FindStringSubmatch(ref.Name); m != nil {
				o = owner{name: m[1], kind: "CronJob", apiVersion: "batch/v1"}
			}
		}
		break
	}
	return o
}

// uri is ISTIO_META_OWNER's value; "" when the owner has no name.
func (o owner) uri(ns string) string {
	if o.name == "" || o.apiVersion == "" {
		return ""
	}
	if ns == "" {
		ns = "default"
	}
	return "kubernetes://apis/" + o.apiVersion + "/namespaces/" + ns + "/" + strings.ToLower(o.kind) + "s/" + o.name
}

// firstOf returns the first non-empty value.
func firstOf(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// canonicalName is service.istio.io/canonical-name as istio's template.
func canonicalName(labels map[string]string, o owner) string {
	n := firstOf(labels[LabelCanonicalNm], labels["app.kubernetes.io/name"], labels["app"], o.name)
	if len(n) > 63 {
		n = n[:63]
	}
	return strings.Trim(n, "-_.")
}

// canonicalRevision is service.istio.io/canonical-revision.
func canonicalRevision(labels map[string]string) string {
	return firstOf(labels[LabelCanonicalRev], labels["app.kubernetes.io/version"], labels["version"], "latest")
}

// injectionStatus is the sidecar.istio.io/status annotation's value.
type injectionStatus struct {
	InitContainers   []string `json:"initContainers"`
	Containers       []string `json:"containers"`
	Volumes          []string `json:"volumes"`
	ImagePullSecrets []string `json:"imagePullSecrets"`
	Revision         string   `json:"revision"`
}

func (st injectionStatus) String() string {
	b, _ := json.Marshal(st) // plain strings: cannot fail
	return string(b)
}

// sanitize is Prometheus's label-name sanitising, by which
// prometheus.io/scrape, prometheus.io.scrape and prometheus-io/scrape all
// mean the same annotation.
func sanitize(k string) string {
	var b strings.Builder
	for _, r := range k {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// scrapeConfig is pilot-agent's ISTIO_PROMETHEUS_ANNOTATIONS.
type scrapeConfig struct {
	Scrape string `json:"scrape"`
	Path   string `json:"path"`
	Port   string `json:"port"`
}

// prometheusMerge applies istio's metrics merging: unless the pod opts out
// (prometheus.io/scrape false) the app's prometheus.io annotations move to
// the proxy's ISTIO_PROMETHEUS_ANNOTATIONS and are replaced by ones pointing
// at pilot-agent's merged /stats/prometheus on the status port.
func prometheusMerge(pod *corev1.Pod, proxy *corev1.Container, statusPort string) {
	var sc scrapeConfig
	for k, v := range pod.Annotations {
		switch sanitize(k) {
		case "prometheus_io_scrape":
			if v == "false" || v == "False" || v == "0" || v == "f" || v == "F" || v == "FALSE" {
				return
			}
			sc.Scrape = v
		case "prometheus_io_port":
			if v == statusPort {
				return // already merged, or the user points at the agent
			}
			sc.Port = v
		case "prometheus_io_path":
			sc.Path = v
		}
	}
	if sc != (scrapeConfig{}) {
		b, _ := json.Marshal(sc)
		proxy.Env = append(proxy.Env, corev1.EnvVar{Name: "ISTIO_PROMETHEUS_ANNOTATIONS", Value: string(b)})
	}
	for k := range pod.Annotations {
		switch sanitize(k) {
		case "prometheus_io_scrape", "prometheus_io_port", "prometheus_io_path", "prometheus_istio_io_scrape_targets":
			delete(pod.Annotations, k)
		}
	}
	pod.Annotations["prometheus.io/port"] = statusPort
	pod.Annotations["prometheus.io/path"] = "/stats/prometheus"
	pod.Annotations["prometheus.io/scrape"] = "true"
}
