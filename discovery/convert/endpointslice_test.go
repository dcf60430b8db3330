package convert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/internal/model"
)

func slice(eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "reviews-abc", Namespace: "shop", Labels: map[string]string{ServiceNameLabel: "reviews"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports: []discoveryv1.EndpointPort{
			{Name: ptr("http"), Port: ptr(int32(9080))},
			{Name: ptr("grpc"), Port: ptr(int32(9090))},
		},
		Endpoints: eps,
	}
}

func TestEndpointSliceConditions(t *testing.T) {
	tests := []struct {
		name                        string
		cond                        discoveryv1.EndpointConditions
		ready, serving, terminating bool
		routable                    bool
	}{
		{"all nil: ready", discoveryv1.EndpointConditions{}, true, true, false, true},
		{"not ready, serving nil follows ready", discoveryv1.EndpointConditions{Ready: ptr(false)}, false, false, false, false},
		{"terminating but serving", discoveryv1.EndpointConditions{Ready: ptr(false), Serving: ptr(true), Terminating: ptr(true)}, false, true, true, false},
		{"ready, explicit not serving", discoveryv1.EndpointConditions{Ready: ptr(true), Serving: ptr(false)}, true, false, false, true},
		{"ready and terminating", discoveryv1.EndpointConditions{Ready: ptr(true), Terminating: ptr(true)}, true, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := EndpointSlice(slice(discoveryv1.Endpoint{Addresses: []string{"10.1.0.1"}, Conditions: tt.cond}))
			require.NoError(t, err)
			require.Len(t, set.Endpoints, 1)
			ep := set.Endpoints[0]
			assert.Equal(t, tt.ready, ep.Ready, "ready")
			assert.Equal(t, tt.serving, ep.Serving, "serving")
			assert.Equal(t, tt.terminating, ep.Terminating, "terminating")
			assert.Equal(t, tt.routable, ep.Routable(), "routable")
		})
	}
}

func TestEndpointSlice(t *testing.T) {
	es := slice(
		discoveryv1.Endpoint{
			Addresses: []string{"10.1.0.1", "10.1.0.2"},
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: "reviews-v1-0"},
			Zone:      ptr("eu-west-1a"), DeprecatedTopology: map[string]string{regionLabel: "eu-west-1"},
		},
		discoveryv1.Endpoint{
			Addresses: []string{"10.1.0.3"},
			TargetRef: &corev1.ObjectReference{Kind: "Node", Name: "n1"},
			Zone:      ptr("z"),
		},
	)
	es.Ports = append(es.Ports, discoveryv1.EndpointPort{Port: ptr(int32(8080))}, discoveryv1.EndpointPort{Name: ptr("all")})
	set, err := EndpointSlice(es)
	require.NoError(t, err)
	assert.Equal(t, "reviews-abc", set.Name)
	assert.Equal(t, "shop", set.Namespace)
	assert.Equal(t, "reviews", set.ServiceName)
	ports := map[string]uint32{"http": 9080, "grpc": 9090, "": 8080}
	want := []model.Endpoint{
		{Address: "10.1.0.1", Ports: ports, WorkloadName: "reviews-v1-0", Locality: "eu-west-1/eu-west-1a", Ready: true, Serving: true},
		{Address: "10.1.0.2", Ports: ports, WorkloadName: "reviews-v1-0", Locality: "eu-west-1/eu-west-1a", Ready: true, Serving: true},
		{Address: "10.1.0.3", Ports: ports, Locality: "/z", Ready: true, Serving: true},
	}
	assert.Equal(t, want, set.Endpoints)
}

func TestEndpointSliceErrors(t *testing.T) {
	tests := []struct {
		name      string
		mutate    func(*discoveryv1.EndpointSlice)
		wantField string
	}{
		{"missing service label", func(es *discoveryv1.EndpointSlice) { es.Labels = nil }, "metadata.labels[kubernetes.io/service-name]"},
		{"FQDN slice", func(es *discoveryv1.EndpointSlice) { es.AddressType = discoveryv1.AddressTypeFQDN }, "addressType"},
		{"bad address", func(es *discoveryv1.EndpointSlice) { es.Endpoints[0].Addresses = []string{"10.1.0.1", "db.local"} }, "endpoints[0].addresses[1]"},
		{"bad port", func(es *discoveryv1.EndpointSlice) { es.Ports[1].Port = ptr(int32(0)) }, "ports[1].port"},
		{"missing name", func(es *discoveryv1.EndpointSlice) { es.Name = "" }, "metadata.name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es := slice(discoveryv1.Endpoint{Addresses: []string{"10.1.0.1"}})
			tt.mutate(es)
			_, err := EndpointSlice(es)
			var oe *model.ObjectError
			require.ErrorAs(t, err, &oe)
			assert.Equal(t, model.KindEndpointSlice, oe.Kind)
			assert.Equal(t, "shop", oe.Namespace)
			assert.Equal(t, tt.wantField, oe.Field)
			assert.NotEmpty(t, oe.Message)
		})
	}
}
