package convert

import (
	"fmt"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/meshd/meshd/internal/model"
)

// Object converts any supported typed object (as an informer delivers it) to
// its model kind and value. Conversion errors are *model.ObjectError. A
// Secret that holds no TLS credential converts to a nil value and no
// error: nothing to keep (a change without an object deletes it).
func Object(obj any, domain string) (model.Kind, any, error) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return model.KindNamespace, Namespace(o), nil
	case *corev1.Service:
		v, err := Service(o, domain)
		return model.KindService, v, err
	case *discoveryv1.EndpointSlice:
		v, err := EndpointSlice(o)
		return model.KindEndpointSlice, v, err
	case *corev1.Pod:
		v, err := Pod(o)
		return model.KindPod, v, err
	case *networkingv1.VirtualService:
		v, err := VirtualService(o)
		return model.KindVirtualService, v, err
	case *networkingv1.DestinationRule:
		v, err := DestinationRule(o)
		return model.KindDestinationRule, v, err
	case *networkingv1.Gateway:
		v, err := Gateway(o)
		return model.KindGateway, v, err
	case *networkingv1.ServiceEntry:
		v, err := ServiceEntry(o)
		return model.KindServiceEntry, v, err
	case *networkingv1.Sidecar:
		v, err := Sidecar(o)
		return model.KindSidecar, v, err
	case *securityv1.PeerAuthentication:
		v, err := PeerAuthentication(o)
		return model.KindPeerAuthentication, v, err
	case *securityv1.AuthorizationPolicy:
		v, err := AuthorizationPolicy(o)
		return model.KindAuthorizationPolicy, v, err
	case *securityv1.RequestAuthentication:
		v, err := RequestAuthentication(o)
		return model.KindRequestAuthentication, v, err
	case *corev1.Secret:
		v, err := Secret(o)
		if v == nil {
			return model.KindSecret, nil, err // no typed nil: not a credential, or an error
		}
		return model.KindSecret, v, nil
	}
	return "", nil, fmt.Errorf("unsupported object type %T", obj)
}
