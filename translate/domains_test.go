package translate

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/meshd/meshd/internal/model"
)

// serviceDomains emits what istiod 1.29's generateVirtualHostDomains emits
// for a proxy whose DNS domain is <ns>.svc.cluster.local: without ports for
// sidecars, with them for proxyless gRPC.
func TestServiceDomains(t *testing.T) {
	k8s := &model.Service{Hostname: "a.ns.svc.cluster.local", Name: "a", Namespace: "ns",
		VIPs: []string{"10.96.0.1", "fd00::1"}, Origin: model.KindService}
	se := &model.Service{Hostname: "api.example.com", VIPs: []string{"240.0.0.1"}, Origin: model.KindServiceEntry}
	for _, tc := range []struct {
		name string
		svc  *model.Service
		ns   string
		port uint32
		want []string
	}{
		{"own namespace", k8s, "ns", 0,
			[]string{"a.ns.svc.cluster.local", "a.ns.svc.cluster.local.", "a", "a.ns.svc", "a.ns", "10.96.0.1"}},
		{"other namespace", k8s, "other", 0,
			[]string{"a.ns.svc.cluster.local", "a.ns.svc.cluster.local.", "a.ns", "a.ns.svc", "10.96.0.1"}},
		{"gRPC, own namespace", k8s, "ns", 8080, []string{
			"a.ns.svc.cluster.local", "a.ns.svc.cluster.local:8080", "a.ns.svc.cluster.local.", "a.ns.svc.cluster.local.:8080",
			"a", "a:8080", "a.ns.svc", "a.ns.svc:8080", "a.ns", "a.ns:8080", "10.96.0.1", "10.96.0.1:8080"}},
		{"ServiceEntry host", se, "ns", 0, []string{"api.example.com", "api.example.com.", "240.0.0.1"}},
		{"ServiceEntry host under .svc of the proxy's namespace", &model.Service{Hostname: "vm.ns.svc.cluster.local", Origin: model.KindServiceEntry}, "ns", 0,
			[]string{"vm.ns.svc.cluster.local", "vm.ns.svc.cluster.local.", "vm", "vm.ns.svc", "vm.ns"}},
		{"wildcard", &model.Service{Hostname: "*.example.com"}, "ns", 0, []string{"*.example.com", "*.example.com."}},
		{"wildcard in the proxy's namespace: no bare *", &model.Service{Hostname: "*.ns.svc.cluster.local"}, "ns", 0,
			[]string{"*.ns.svc.cluster.local", "*.ns.svc.cluster.local.", "*.ns.svc", "*.ns"}},
		{"no namespace part", &model.Service{Hostname: "x.svc.cluster.local"}, "ns", 0,
			[]string{"x.svc.cluster.local", "x.svc.cluster.local."}},
		{"another cluster domain", k8s, "ns", 0, []string{"a.ns.svc.cluster.local", "a.ns.svc.cluster.local.", "10.96.0.1"}},
	} {
		domain := "cluster.local"
		if tc.name == "another cluster domain" {
			domain = "corp.example"
		}
		assert.Equal(t, tc.want, serviceDomains(tc.svc, tc.ns, domain, tc.port), tc.name)
	}
	assert.True(t, ownDomains(k8s, "ns", "cluster.local"))
	assert.False(t, ownDomains(k8s, "other", "cluster.local"))
	assert.False(t, ownDomains(se, "", "cluster.local"))
}
