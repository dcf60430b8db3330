package manifest

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/meshd/meshd/discovery/meshcfg"
)

// Defaults of the flags.
const (
	DefaultNamespace = "istio-system"
	// DefaultTrustDomain is istiod's and meshd serve's.
	DefaultTrustDomain = "cluster.local"
	DefaultReplicas    = 2
	// DefaultImage is meshd's container image; pin a released tag or a
	// digest in production (--image).
	DefaultImage          = "ghcr.io/meshd/meshd:latest"
	DefaultRequestsCPU    = "500m"
	DefaultRequestsMemory = "512Mi"
	DefaultLimitsCPU      = ""
	DefaultLimitsMemory   = "2Gi"
	// DefaultWebhookFailurePolicy is istiod's: a pod is not admitted while
	// no replica answers the injection webhook.
	DefaultWebhookFailurePolicy = string(admissionregistrationv1.Fail)
)

// Options are what `meshd manifest` generates from.
type Options struct {
	// Namespace is where meshd runs (istiod's namespace).
	Namespace string
	// Revision, when set, suffixes names as istiod's revisions do
	// (Service istiod-<rev>, istio-sidecar-injector-<rev>, label
	// istio.io/rev=<rev>), so that meshd can run next to istiod.
	Revision string
	// Replicas of the Deployment; at least 1.
	Replicas int32
	// Image is meshd's container image.
	Image string
	// RequestsCPU, RequestsMemory, LimitsCPU and LimitsMemory are the
	// container's resources as Kubernetes quantities; "" sets none.
	RequestsCPU, RequestsMemory, LimitsCPU, LimitsMemory string
	// WebhookFailurePolicy is the injection webhook's failurePolicy: Fail
	// or Ignore.
	WebhookFailurePolicy string
	// TrustDomain names the mesh in workload identities: the default mesh
	// config's trustDomain and meshd's --trust-domain (its CA's).
	TrustDomain string
	// ProxyImage is the istio-proxy image meshd injects; "" leaves meshd
	// serve's default (--proxy-image).
	ProxyImage string
	// MeshConfig is the mesh ConfigMap's key "mesh" (MeshConfig YAML); ""
	// means DefaultMeshConfig's. Parse reads it from --mesh-config FILE.
	MeshConfig string
}

// Defaults returns the Options of `meshd manifest` without flags.
func Defaults() Options {
	return Options{
		Namespace: DefaultNamespace, TrustDomain: DefaultTrustDomain, Replicas: DefaultReplicas, Image: DefaultImage,
		RequestsCPU: DefaultRequestsCPU, RequestsMemory: DefaultRequestsMemory,
		LimitsCPU: DefaultLimitsCPU, LimitsMemory: DefaultLimitsMemory,
		WebhookFailurePolicy: DefaultWebhookFailurePolicy,
	}
}

// maxReplicas bounds --replicas well below int32's range.
const maxReplicas = 10000

// ErrHelp is returned by Parse when --help or -h is given; print Usage.
var ErrHelp = flag.ErrHelp

// Parse returns the Options for meshd manifest's arguments (without
// "manifest"), reading --mesh-config's file with readFile. Its errors name
// the flag and say what is wanted; with --help it returns ErrHelp. It
// prints nothing.
func Parse(args []string, readFile func(string) ([]byte, error)) (Options, error) {
	o := Defaults()
	fs := flag.NewFlagSet("meshd manifest", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	replicas := int(o.Replicas)
	fs.StringVar(&o.Namespace, "namespace", o.Namespace, "")
	fs.StringVar(&o.Revision, "revision", o.Revision, "")
	fs.IntVar(&replicas, "replicas", replicas, "")
	fs.StringVar(&o.Image, "image", o.Image, "")
	fs.StringVar(&o.ProxyImage, "proxy-image", o.ProxyImage, "")
	fs.StringVar(&o.RequestsCPU, "requests-cpu", o.RequestsCPU, "")
	fs.StringVar(&o.RequestsMemory, "requests-memory", o.RequestsMemory, "")
	fs.StringVar(&o.LimitsCPU, "limits-cpu", o.LimitsCPU, "")
	fs.StringVar(&o.LimitsMemory, "limits-memory", o.LimitsMemory, "")
	fs.StringVar(&o.WebhookFailurePolicy, "webhook-failure-policy", o.WebhookFailurePolicy, "")
	fs.StringVar(&o.TrustDomain, "trust-domain", o.TrustDomain, "")
	meshFile := fs.String("mesh-config", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, ErrHelp
		}
		msg := strings.NewReplacer("flag -", "flag --", "defined: -", "defined: --").Replace(err.Error())
		return o, fmt.Errorf("%s (see meshd manifest --help)", msg)
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q (see meshd manifest --help)", fs.Arg(0))
	}
	if replicas < 1 || replicas > maxReplicas {
		return o, fmt.Errorf("--replicas %d: want at least 1 (and at most %d)", replicas, maxReplicas)
	}
	o.Replicas = int32(replicas)
	if *meshFile != "" {
		b, err := readFile(*meshFile)
		if err != nil {
			return o, fmt.Errorf("--mesh-config: %w", err)
		}
		o.MeshConfig = string(b)
	}
	return o, o.Validate()
}

// Validate checks every option, naming the flag of the first bad one.
func (o Options) Validate() error {
	if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
		return fmt.Errorf("--namespace %q: %s", o.Namespace, strings.Join(errs, "; "))
	}
	if o.Revision != "" {
		// istio.io/rev is a label value; the names it suffixes are DNS labels.
		if errs := validation.IsDNS1123Label(o.Revision); len(errs) > 0 {
			return fmt.Errorf("--revision %q: %s", o.Revision, strings.Join(errs, "; "))
		}
		if len(o.name("istio-sidecar-injector")) > validation.DNS1123LabelMaxLength {
			return fmt.Errorf("--revision %q: too long for the names it suffixes", o.Revision)
		}
	}
	if o.Replicas < 1 {
		return fmt.Errorf("--replicas %d: want at least 1", o.Replicas)
	}
	if strings.TrimSpace(o.Image) == "" || strings.ContainsAny(o.Image, " \t\n") {
		return fmt.Errorf("--image %q: want an image reference", o.Image)
	}
	if strings.ContainsAny(o.ProxyImage, " \t\n") {
		return fmt.Errorf("--proxy-image %q: want an image reference", o.ProxyImage)
	}
	for _, q := range []struct{ flag, v string }{{"requests-cpu", o.RequestsCPU},
		{"requests-memory", o.RequestsMemory}, {"limits-cpu", o.LimitsCPU}, {"limits-memory", o.LimitsMemory}} {
		if q.v == "" {
			continue
		}
		if _, err := resource.ParseQuantity(q.v); err != nil {
			return fmt.Errorf("--%s %q: want a Kubernetes quantity (e.g. 500m, 2, 512Mi, 2Gi), or \"\" for none", q.flag, q.v)
		}
	}
	if o.TrustDomain == "" || strings.ContainsAny(o.TrustDomain, " \t\n/") {
		return fmt.Errorf("--trust-domain %q: want a trust domain such as cluster.local", o.TrustDomain)
	}
	if o.MeshConfig != "" {
		mesh, _, err := meshcfg.Parse([]byte(o.MeshConfig))
		if err != nil {
			return fmt.Errorf("--mesh-config: %w", err)
		}
		if td := cmp.Or(mesh.GetTrustDomain(), DefaultTrustDomain); td != o.TrustDomain {
			return fmt.Errorf("--mesh-config has trustDomain %q but --trust-domain is %q: give --trust-domain %s, "+
				"so that meshd's CA issues the identities the mesh config names", td, o.TrustDomain, td)
		}
	}
	switch admissionregistrationv1.FailurePolicyType(o.WebhookFailurePolicy) {
	case admissionregistrationv1.Fail, admissionregistrationv1.Ignore:
	default:
		return fmt.Errorf("--webhook-failure-policy %q: want Fail or Ignore", o.WebhookFailurePolicy)
	}
	return nil
}

// Usage writes meshd manifest's help.
func Usage(w io.Writer) {
	d := Defaults()
	fmt.Fprintf(w, `usage: meshd manifest [flags] | kubectl apply -f -

Prints meshd's in-cluster install, in istiod's place, as YAML:
  ServiceAccount meshd        the identity meshd runs as
  ClusterRole, ClusterRoleBinding meshd-NS
                              what meshd reads cluster-wide (the objects
                              istiod reads, and nodes for the injector),
                              Events, TokenReviews, the istio-ca-root-cert
                              ConfigMaps and its own webhook's caBundle
  Role, RoleBinding meshd     in NS: the mesh CA Secrets (cacerts,
                              istio-ca-secret) and the mesh ConfigMap
  ConfigMap istio             MeshConfig (key "mesh"): a minimal default, or
                              --mesh-config's; 'kubectl apply' replaces the
                              key mesh of an existing istio ConfigMap
  Deployment meshd            the replicas (labels app=istiod, istio=pilot as
                              istiod's, and app.kubernetes.io/name=meshd)
  PodDisruptionBudget meshd   minAvailable 1 (omitted with --replicas 1)
  Service istiod              what sidecars dial: 15010, 15012, 15014, and
                              443 for the injection webhook (pod port 15017)
  MutatingWebhookConfiguration istio-sidecar-injector
                              istiod's injection webhooks (caBundle is filled
                              in by meshd at run time)
With --revision REV the names get istiod's -REV suffix (meshd-REV, istio-REV,
istiod-REV, istio-sidecar-injector-REV) and the label istio.io/rev=REV, so meshd
runs next to an istiod of another revision. Outside istio-system the webhook
configuration's name ends in -NS, as istiod's.
The namespace itself is not created: kubectl create namespace NS first.

flags:
  --namespace NS                 namespace to install in (default %s)
  --revision REV                 Istio revision to serve (default "": the default revision)
  --replicas N                   replicas, at least 1 (default %d)
  --image IMAGE                  meshd's container image, with meshd at /usr/local/bin/meshd
                                 (default %s); also the image Job
                                 pods copy meshd from (meshd serve --meshd-image)
  --proxy-image IMAGE            istio-proxy image meshd injects (default: meshd serve's
                                 --proxy-image default)
  --requests-cpu QUANTITY        container CPU request, "" for none (default %s)
  --requests-memory QUANTITY     container memory request, "" for none (default %s)
  --limits-cpu QUANTITY          container CPU limit, "" for none (default none)
  --limits-memory QUANTITY       container memory limit, "" for none (default %s)
  --webhook-failure-policy P     injection webhook failurePolicy, Fail or Ignore
                                 (default %s, as istiod: no pod is admitted
                                 uninjected while meshd is down)
  --trust-domain DOMAIN          trust domain of workload identities: meshd serve --trust-domain,
                                 and the default mesh config's trustDomain (default %s)
  --mesh-config FILE             MeshConfig YAML for the istio ConfigMap (default: rootNamespace
                                 NS, trustDomain as --trust-domain, discoveryAddress
                                 istiod.NS.svc:15012); to keep istiod's when taking its place:
                                 --mesh-config <(kubectl -n NS get configmap istio -o jsonpath='{.data.mesh}')
`, d.Namespace, d.Replicas, d.Image, d.RequestsCPU, d.RequestsMemory, d.LimitsMemory, d.WebhookFailurePolicy,
		d.TrustDomain)
}
