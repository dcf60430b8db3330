package file

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/discovery/convert"
	"github.com/meshd/meshd/internal/model"
)

// kindDecoder decodes one kind of manifest.
type kindDecoder struct {
	apiVersions []string
	// decode decodes the object's JSON with namespace ns (already defaulted)
	// and converts it to its model value.
	decode func(data []byte, ns, domain string) (any, error)
}

var istioVersions = []string{"networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"}

var decoders = map[model.Kind]kindDecoder{
	model.KindNamespace: {[]string{"v1"}, func(data []byte, _, _ string) (any, error) {
		o := &corev1.Namespace{}
		if err := strictJSON(data, o); err != nil {
			return nil, err
		}
		return convert.Namespace(o), nil
	}},
	model.KindService: {[]string{"v1"}, func(data []byte, ns, domain string) (any, error) {
		o := &corev1.Service{}
		if err := strictJSON(data, o); err != nil {
			return nil, err
		}
		o.Namespace = ns
		return convert.Service(o, domain)
	}},
	model.KindEndpointSlice: {[]string{"discovery.k8s.io/v1"}, func(data []byte, ns, _ string) (any, error) {
		o := &discoveryv1.EndpointSlice{}
		if err := strictJSON(data, o); err != nil {
			return nil, err
		}
		o.Namespace = ns
		return convert.EndpointSlice(o)
	}},
	model.KindPod: {[]string{"v1"}, func(data []byte, ns, _ string) (any, error) {
		o := &corev1.Pod{}
		if err := strictJSON(data, o); err != nil {
			return nil, err
		}
		o.Namespace = ns
		return convert.Pod(o)
	}},
	model.KindVirtualService: {istioVersions, func(data []byte, ns, _ string) (any, error) {
		o := &networkingv1.VirtualService{}
		if err := decodeIstio(data, ns, &o.ObjectMeta, &o.Spec); err != nil {
			return nil, err
		}
		return convert.VirtualService(o)
	}},
	model.KindDestinationRule: {istioVersions, func(data []byte, ns, _ string) (any, error) {
		o := &networkingv1.DestinationRule{}
		if err := decodeIstio(data, ns, &o.ObjectMeta, &o.Spec); err != nil {
			return nil, err
		}
		return convert.DestinationRule(o)
	}},
	model.KindGateway: {istioVersions, func(data []byte, ns, _ string) (any, error) {
		o := &networkingv1.Gateway{}
		if err := decodeIstio(data, ns, &o.ObjectMeta, &o.Spec); err != nil {
			return nil, err
		}
		return convert.Gateway(o)
	}},
	model.KindServiceEntry: {istioVersions, func(data []byte, ns, _ string) (any, error) {
		o := &networkingv1.ServiceEntry{}
		if err := decodeIstio(data, ns, &o.ObjectMeta, &o.Spec); err != nil {
			return nil, err
		}
		return convert.ServiceEntry(o)
	}},
	model.KindSidecar: {istioVersions, func(data []byte, ns, _ string) (any, error) {
		o := &networkingv1.Sidecar{}
		if err := decodeIstio(data, ns, &o.ObjectMeta, &o.Spec); err != nil {
			return nil, err
		}
		return convert.Sidecar(o)
	}},
}

// decodeObject checks the apiVersion for the kind and decodes the object.
func decodeObject(h *header, data []byte, ns, domain string) (any, error) {
	kind := model.Kind(h.Kind)
	dec, ok := decoders[kind]
	if !ok {
		return nil, &decodeError{field: "kind", msg: fmt.Sprintf("unsupported kind %q (supported: %s)", h.Kind, supportedKinds())}
	}
	if !slices.Contains(dec.apiVersions, h.APIVersion) {
		return nil, &decodeError{field: "apiVersion", msg: fmt.Sprintf("apiVersion %q is not supported for %s (want %s)",
			h.APIVersion, kind, strings.Join(dec.apiVersions, ", "))}
	}
	return dec.decode(data, ns, domain)
}

// istioEnvelope is an Istio manifest with its spec left undecoded.
type istioEnvelope struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            json.RawMessage   `json:"spec"`
	Status          json.RawMessage   `json:"status"`
}

// decodeIstio decodes an Istio manifest's metadata into meta (setting the
// namespace to ns) and its spec into spec, strictly.
func decodeIstio(data []byte, ns string, meta *metav1.ObjectMeta, spec proto.Message) error {
	var env istioEnvelope
	if err := strictJSON(data, &env); err != nil {
		return err
	}
	*meta = env.Metadata
	meta.Namespace = ns
	return strictProto(env.Spec, spec, "spec")
}

func supportedKinds() string {
	out := make([]string, 0, len(decoders))
	for k := range decoders {
		out = append(out, string(k))
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}
