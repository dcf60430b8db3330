package model

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
)

func TestParseProxy(t *testing.T) {
	cases := []struct {
		name, id string
		md       map[string]any
		want     Scope
		err      string
	}{
		{"sidecar with metadata", "sidecar~10.1.2.3~pod.ns~ns.svc.cluster.local",
			map[string]any{"NAMESPACE": "shop", "GENERATOR": "grpc", "LABELS": map[string]any{"version": "v1", "app": "a", "pod-template-hash": "x"}},
			Scope{SidecarProxy, "grpc", "shop", "app=a,version=v1", false}, ""},
		{"namespace from id", "router~10.1.2.3~gw-1.istio-system~istio-system.svc.cluster.local",
			nil, Scope{Router, "", "istio-system", "", false}, ""},
		{"pilot-agent's envoy", "sidecar~10.1.2.3~pod.ns~ns.svc.cluster.local",
			map[string]any{"PROXY_CONFIG": map[string]any{"discoveryAddress": "istiod.istio-system.svc:15012"}},
			Scope{SidecarProxy, "", "ns", "", true}, ""},
		{"too few fields", "sidecar~10.1.2.3", nil, Scope{}, "want 4 fields"},
		{"bad type", "waypoint~10.1.2.3~p.ns~ns.svc.cluster.local", nil, Scope{}, "unknown proxy type"},
		{"bad ip", "sidecar~not-ip~p.ns~ns.svc.cluster.local", nil, Scope{}, "not an IP"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := ParseProxy(c.id, c.md)
			if c.err != "" {
				require.ErrorContains(t, err, c.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, c.want, p.Scope())
			back, err := ParseScopeKey(p.Scope().Key())
			require.NoError(t, err)
			assert.Equal(t, c.want, back)
			assert.Equal(t, len(p.Labels) > 0, len(back.LabelMap()) > 0)
		})
	}
}

func TestProtocolFromPortName(t *testing.T) {
	for name, want := range map[string]Protocol{
		"http": ProtocolHTTP, "http-web": ProtocolHTTP, "grpc": ProtocolGRPC, "grpc-web": ProtocolGRPCWeb,
		"grpc-web-x": ProtocolGRPCWeb, "tcp-db": ProtocolTCP, "HTTP2": ProtocolHTTP2, "web": ProtocolUnsupported,
	} {
		assert.Equal(t, want, ProtocolFromPortName(name), name)
	}
}

func svcChange(ns, name string) Change {
	return Change{Kind: KindService, Namespace: ns, Name: name, Object: &Service{
		Hostname: name + "." + ns + ".svc.cluster.local", Name: name, Namespace: ns, Origin: KindService,
		Ports: []Port{{Name: "http", Port: 80, Protocol: ProtocolHTTP}},
	}}
}

// Endpoints sharing an address but not ports (several pods behind one node
// IP, or backends on one loopback address) are distinct endpoints.
func TestEndpointsWithSameAddressAndOtherPortsAreKept(t *testing.T) {
	st := NewStore()
	snap := st.Apply([]Change{svcChange("ns", "a"),
		{Kind: KindEndpointSlice, Namespace: "ns", Name: "s1", Object: &EndpointSet{Name: "s1", Namespace: "ns", ServiceName: "a",
			Endpoints: []Endpoint{{Address: "10.0.0.1", Ports: map[string]uint32{"http": 1000}, Ready: true}}}},
		{Kind: KindEndpointSlice, Namespace: "ns", Name: "s2", Object: &EndpointSet{Name: "s2", Namespace: "ns", ServiceName: "a",
			Endpoints: []Endpoint{
				{Address: "10.0.0.1", Ports: map[string]uint32{"http": 2000}, Ready: true},
				{Address: "10.0.0.1", Ports: map[string]uint32{"http": 1000}, Ready: true}, // duplicate of s1's
			}}},
	})
	eps := snap.Endpoints("a.ns.svc.cluster.local", "ns")
	require.Len(t, eps, 2)
	assert.Equal(t, uint32(1000), eps[0].Ports["http"])
	assert.Equal(t, uint32(2000), eps[1].Ports["http"])
}

func TestStoreKeepsLastGoodObjectOnErrorAndIsCopyOnWrite(t *testing.T) {
	st := NewStore()
	var events []Event
	st.Subscribe(func(e Event) { events = append(events, e) })
	first := st.Apply([]Change{svcChange("ns", "a")})
	bad := &ObjectError{Kind: KindService, Namespace: "ns", Name: "a", Field: "spec.ports", Message: "broken"}
	second := st.Apply([]Change{{Kind: KindService, Namespace: "ns", Name: "a", Err: bad}})
	_, ok := second.Object(KindService, "ns", "a")
	assert.True(t, ok, "a broken edit keeps the last good object")
	assert.Equal(t, []ObjectError{*bad}, second.Errors())
	assert.Empty(t, first.Errors(), "older snapshots never change")

	same := st.Apply([]Change{{Kind: KindService, Namespace: "ns", Name: "a", Err: bad}})
	assert.Same(t, second, same, "repeating an error is not a change")
	assert.Len(t, events, 2)

	third := st.Apply([]Change{{Kind: KindService, Namespace: "ns", Name: "a"}})
	_, ok = third.Object(KindService, "ns", "a")
	assert.False(t, ok)
	assert.Empty(t, third.Errors(), "deleting clears the error")
	_, ok = second.Object(KindService, "ns", "a")
	assert.True(t, ok, "older snapshots never change")
	assert.Equal(t, uint64(3), third.Seq)
}

func TestServiceEntryHostsBecomeServices(t *testing.T) {
	st := NewStore()
	snap := st.Apply([]Change{{Kind: KindServiceEntry, Namespace: "bank", Name: "core", Object: seConfig()}})
	svcs := snap.ServicesByHost("core.bank.example")
	require.Len(t, svcs, 1)
	assert.True(t, svcs[0].MeshExternal)
	assert.Equal(t, ResolutionDNS, svcs[0].Resolution)
	assert.Equal(t, ProtocolTLS, svcs[0].Ports[0].Protocol)
	eps := snap.Endpoints("core.bank.example", "bank")
	require.Len(t, eps, 1)
	assert.Equal(t, "core.bank.example", eps[0].Address, "DNS resolution without endpoints resolves the host")
}

func seConfig() *Config {
	return &Config{Kind: KindServiceEntry, Namespace: "bank", Name: "core", Spec: &networking.ServiceEntry{
		Hosts:      []string{"core.bank.example"},
		Location:   networking.ServiceEntry_MESH_EXTERNAL,
		Resolution: networking.ServiceEntry_DNS,
		Ports:      []*networking.ServicePort{{Number: 443, Name: "tls", Protocol: "TLS"}},
	}}
}
