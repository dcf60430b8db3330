package model

import (
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
)

// TestDerivedIndexEqualsRebuilt: after EndpointSlice, Pod and routing
// config changes, the index derived from the previous one equals an index
// built from scratch, and services whose slices did not change keep their
// endpoints (shared).
func TestDerivedIndexEqualsRebuilt(t *testing.T) {
	st := NewStore()
	var changes []Change
	for i := range 4 {
		name := fmt.Sprintf("svc-%d", i)
		changes = append(changes,
			Change{Kind: KindService, Namespace: "ns", Name: name, Object: &Service{Hostname: name + ".ns.svc.cluster.local",
				Name: name, Namespace: "ns", Origin: KindService, Ports: []Port{{Name: "http", Port: 80, Protocol: ProtocolHTTP}}}},
			Change{Kind: KindEndpointSlice, Namespace: "ns", Name: name + "-a", Object: slice(name+"-a", name, "10.0.%d.1", i)})
	}
	changes = append(changes, Change{Kind: KindPod, Namespace: "ns", Name: "p1",
		Object: &Workload{Name: "p1", Namespace: "ns", IP: "10.0.9.1", Labels: map[string]string{"version": "v2"}}})
	snap := st.Apply(changes)
	snap.Services() // the index of the previous snapshot is built, as after a push

	pod := func(name, ip, version string) *Workload {
		return &Workload{Name: name, Namespace: "ns", IP: ip, Labels: map[string]string{"version": version}}
	}
	const svc0, svc1, svc2, svc3 = "svc-0.ns.svc.cluster.local/ns", "svc-1.ns.svc.cluster.local/ns",
		"svc-2.ns.svc.cluster.local/ns", "svc-3.ns.svc.cluster.local/ns"
	steps := []struct {
		changes []Change
		changed []string // the services whose endpoints change
	}{
		{[]Change{{Kind: KindEndpointSlice, Namespace: "ns", Name: "svc-1-a", Object: slice("svc-1-a", "svc-1", "10.0.7.%d", 2)}}, []string{svc1}},
		{[]Change{{Kind: KindEndpointSlice, Namespace: "ns", Name: "svc-1-b", Object: slice("svc-1-b", "svc-1", "10.0.9.%d", 1)}}, []string{svc1}},       // a second slice, pod labels
		{[]Change{{Kind: KindEndpointSlice, Namespace: "ns", Name: "svc-2-a"}}, []string{svc2}},                                                          // deleted
		{[]Change{{Kind: KindEndpointSlice, Namespace: "ns", Name: "svc-3-a", Object: slice("svc-3-a", "svc-0", "10.0.8.%d", 1)}}, []string{svc0, svc3}}, // moved to svc-0
		{[]Change{{Kind: KindEndpointSlice, Namespace: "ns", Name: "orphan", Object: slice("orphan", "nosuch", "10.0.6.%d", 1)}}, nil},                   // no service
		{[]Change{{Kind: KindPod, Namespace: "ns", Name: "p1", Object: pod("p1", "10.0.9.1", "v3")}}, []string{svc1}},                                    // relabelled pod
		{[]Change{{Kind: KindPod, Namespace: "ns", Name: "p2", Object: pod("p2", "10.0.0.1", "v1")}}, []string{svc0}},                                    // a pod for svc-0's address
		{[]Change{{Kind: KindPod, Namespace: "ns", Name: "p1"}, // a pod and a slice at once
			{Kind: KindEndpointSlice, Namespace: "ns", Name: "svc-0-a", Object: slice("svc-0-a", "svc-0", "10.0.5.%d", 1)}}, []string{svc0, svc1}},
		{[]Change{vs("a", "svc-0"), vs("b", "svc-1")}, nil}, // config only
		{[]Change{vs("a", "svc-2"), {Kind: KindDestinationRule, Namespace: "ns", Name: "dr", Object: &Config{Kind: KindDestinationRule,
			Name: "dr", Namespace: "ns", Spec: &networking.DestinationRule{Host: "svc-2"}}}}, nil},
		{[]Change{{Kind: KindVirtualService, Namespace: "ns", Name: "b"}, // config and a slice at once
			{Kind: KindEndpointSlice, Namespace: "ns", Name: "svc-3-b", Object: slice("svc-3-b", "svc-3", "10.0.4.%d", 1)}}, []string{svc3}},
	}
	for i, step := range steps {
		prev := snap
		snap = st.Apply(step.changes)
		require.True(t, snap.built.Load(), "step %d: the index is derived at once", i)
		want := buildIndex(snap)
		got := snap.index()
		require.Equal(t, want.endpoints, got.endpoints, "step %d", i)
		require.Equal(t, want.services, got.services, "step %d", i)
		require.Equal(t, want.workloads, got.workloads, "step %d", i)
		require.Equal(t, want.podsByIP, got.podsByIP, "step %d", i)
		require.Equal(t, want.configs, got.configs, "step %d", i)
		for key, eps := range got.endpoints {
			before := prev.index().endpoints[key]
			if !slices.Contains(step.changed, key) && len(eps) > 0 {
				require.True(t, reflect.ValueOf(eps).Pointer() == reflect.ValueOf(before).Pointer(), "step %d: %s unchanged, shared", i, key)
			}
		}
	}

	// Two pods with one address: built afresh.
	dup := st.Apply([]Change{{Kind: KindPod, Namespace: "ns", Name: "p3", Object: pod("p3", "10.0.0.1", "v9")}})
	require.False(t, dup.built.Load())
	dup.Services()

	// Any other kind: the next index is built afresh.
	next := st.Apply([]Change{{Kind: KindService, Namespace: "ns", Name: "svc-9", Object: &Service{Hostname: "svc-9.ns.svc.cluster.local",
		Name: "svc-9", Namespace: "ns", Origin: KindService}}})
	require.False(t, next.built.Load())
	require.Len(t, next.Services(), 5)
}

// vs is a change adding or updating VirtualService name for host.
func vs(name, host string) Change {
	return Change{Kind: KindVirtualService, Namespace: "ns", Name: name, Object: &Config{Kind: KindVirtualService,
		Name: name, Namespace: "ns", Spec: &networking.VirtualService{Hosts: []string{host}}}}
}

func slice(name, service, addrFormat string, n int) *EndpointSet {
	return &EndpointSet{Name: name, Namespace: "ns", ServiceName: service, Endpoints: []Endpoint{
		{Address: fmt.Sprintf(addrFormat, n), Ports: map[string]uint32{"http": 8080}, Ready: true, Serving: true},
	}}
}

func TestSameObjects(t *testing.T) {
	st := NewStore()
	a := st.Apply([]Change{{Kind: KindNamespace, Name: "ns", Object: &Namespace{Name: "ns"}}})
	b := st.Apply([]Change{{Kind: KindEndpointSlice, Namespace: "ns", Name: "s", Object: slice("s", "x", "10.0.0.%d", 1)}})
	require.True(t, b.SameObjects(a, KindEndpointSlice))
	require.False(t, b.SameObjects(a))
	c := st.Apply([]Change{{Kind: KindNamespace, Name: "other", Object: &Namespace{Name: "other"}}})
	require.False(t, c.SameObjects(b, KindEndpointSlice))
}
