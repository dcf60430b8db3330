package convert

import (
	"google.golang.org/protobuf/proto"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/internal/model"
)

// VirtualService validates and converts a VirtualService.
func VirtualService(vs *networkingv1.VirtualService) (*model.Config, error) {
	if vs == nil {
		return nil, nilObject(model.KindVirtualService)
	}
	return newConfig(model.KindVirtualService, &vs.ObjectMeta, &vs.Spec, validateVirtualService(&vs.Spec))
}

// DestinationRule validates and converts a DestinationRule.
func DestinationRule(dr *networkingv1.DestinationRule) (*model.Config, error) {
	if dr == nil {
		return nil, nilObject(model.KindDestinationRule)
	}
	return newConfig(model.KindDestinationRule, &dr.ObjectMeta, &dr.Spec, validateDestinationRule(&dr.Spec))
}

// Gateway validates and converts a Gateway.
func Gateway(gw *networkingv1.Gateway) (*model.Config, error) {
	if gw == nil {
		return nil, nilObject(model.KindGateway)
	}
	return newConfig(model.KindGateway, &gw.ObjectMeta, &gw.Spec, validateGateway(&gw.Spec))
}

// ServiceEntry validates and converts a ServiceEntry.
func ServiceEntry(se *networkingv1.ServiceEntry) (*model.Config, error) {
	if se == nil {
		return nil, nilObject(model.KindServiceEntry)
	}
	return newConfig(model.KindServiceEntry, &se.ObjectMeta, &se.Spec, validateServiceEntry(&se.Spec))
}

// Sidecar validates and converts a Sidecar.
func Sidecar(sc *networkingv1.Sidecar) (*model.Config, error) {
	if sc == nil {
		return nil, nilObject(model.KindSidecar)
	}
	return newConfig(model.KindSidecar, &sc.ObjectMeta, &sc.Spec, validateSidecar(&sc.Spec))
}

// PeerAuthentication validates and converts a PeerAuthentication
// (security.istio.io; its spec is istio.io/api's security/v1beta1 proto).
func PeerAuthentication(pa *securityv1.PeerAuthentication) (*model.Config, error) {
	if pa == nil {
		return nil, nilObject(model.KindPeerAuthentication)
	}
	return newConfig(model.KindPeerAuthentication, &pa.ObjectMeta, &pa.Spec, validatePeerAuthentication(&pa.Spec))
}

// AuthorizationPolicy validates and converts an AuthorizationPolicy
// (security.istio.io; its spec is istio.io/api's security/v1beta1 proto).
func AuthorizationPolicy(ap *securityv1.AuthorizationPolicy) (*model.Config, error) {
	if ap == nil {
		return nil, nilObject(model.KindAuthorizationPolicy)
	}
	return newConfig(model.KindAuthorizationPolicy, &ap.ObjectMeta, &ap.Spec, validateAuthorizationPolicy(&ap.Spec))
}

// RequestAuthentication validates and converts a RequestAuthentication
// (security.istio.io; its spec is istio.io/api's security/v1beta1 proto).
func RequestAuthentication(ra *securityv1.RequestAuthentication) (*model.Config, error) {
	if ra == nil {
		return nil, nilObject(model.KindRequestAuthentication)
	}
	return newConfig(model.KindRequestAuthentication, &ra.ObjectMeta, &ra.Spec, validateRequestAuthentication(&ra.Spec))
}

// newConfig checks the metadata, then reports specErr (the result of the
// kind's spec validation) or builds the Config.
func newConfig(kind model.Kind, meta *metav1.ObjectMeta, spec proto.Message, specErr *fieldError) (*model.Config, error) {
	if fe := checkMeta(meta, true); fe != nil {
		return nil, objectError(kind, meta, fe)
	}
	if specErr == nil {
		specErr = checkSpecExportTo(spec, meta.Namespace)
	}
	if specErr != nil {
		return nil, objectError(kind, meta, specErr)
	}
	return &model.Config{
		Kind: kind, Name: meta.Name, Namespace: meta.Namespace,
		Labels: meta.Labels, Annotations: meta.Annotations,
		CreatedAt: meta.CreationTimestamp.Time, Spec: spec,
	}, nil
}
