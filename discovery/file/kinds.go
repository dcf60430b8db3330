package file

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
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

// securityVersions are the security.istio.io versions the CRDs serve (one
// schema: istio.io/api's security/v1beta1).
var securityVersions = []string{"security.istio.io/v1", "security.istio.io/v1beta1"}

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
	model.KindSecret: {[]string{"v1"}, decodeSecret},
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
	model.KindPeerAuthentication: {securityVersions, func(data []byte, ns, _ string) (any, error) {
		o := &securityv1.PeerAuthentication{}
		if err := decodeIstio(data, ns, &o.ObjectMeta, &o.Spec); err != nil {
			return nil, err
		}
		return convert.PeerAuthentication(o)
	}},
	model.KindAuthorizationPolicy: {securityVersions, func(data []byte, ns, _ string) (any, error) {
		o := &securityv1.AuthorizationPolicy{}
		if err := decodeIstio(data, ns, &o.ObjectMeta, &o.Spec); err != nil {
			return nil, err
		}
		return convert.AuthorizationPolicy(o)
	}},
	model.KindRequestAuthentication: {securityVersions, func(data []byte, ns, _ string) (any, error) {
		o := &securityv1.RequestAuthentication{}
		if err := decodeIstio(data, ns, &o.ObjectMeta, &o.Spec); err != nil {
			return nil, err
		}
		return convert.RequestAuthentication(o)
	}},
}

// decodeSecret decodes a Secret (data base64-encoded, stringData plain and
// winning over data, as the API server merges them) and keeps it only if
// it holds a TLS credential: a nil value for any other Secret.
func decodeSecret(data []byte, ns, _ string) (any, error) {
	if err := checkBase64(data); err != nil {
		return nil, err
	}
	o := &corev1.Secret{}
	if err := strictJSON(data, o); err != nil {
		return nil, err
	}
	o.Namespace = ns
	for k, v := range o.StringData {
		if o.Data == nil {
			o.Data = map[string][]byte{}
		}
		o.Data[k] = []byte(v)
	}
	s, err := convert.Secret(o)
	if s == nil {
		return nil, err
	}
	return s, nil
}

// checkBase64 names the data key whose value is not base64 (JSON decoding
// only says "illegal base64 data").
func checkBase64(data []byte) error {
	var raw struct {
		Data map[string]any `json:"data"`
	}
	if json.Unmarshal(data, &raw) != nil {
		return nil // strictJSON reports it
	}
	for _, k := range slices.Sorted(maps.Keys(raw.Data)) {
		v, ok := raw.Data[k].(string)
		if !ok {
			continue
		}
		if _, err := base64.StdEncoding.DecodeString(v); err != nil {
			return &decodeError{field: "data[" + k + "]", msg: "not base64: " + err.Error()}
		}
	}
	return nil
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
