package main

import (
	"context"
	"fmt"
	"sync"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// mesh is the generated mesh: S services spread over N namespaces, E
// endpoints in one EndpointSlice per service, and a VirtualService (90/10
// split to the next service, the canary case) plus a DestinationRule
// (connection pool and outlier detection, the bulkhead case) for every
// tenth service. Scoped, every namespace also has a Sidecar (egress
// ./* and istio-system/*) and the split goes to the next service of the
// same namespace.
type mesh struct {
	services, endpoints, namespaces int
	kube                            kubernetes.Interface
	istio                           istioclient.Interface
	// epSerial numbers endpoint addresses so a rolling update gets fresh ones.
	epSerial int
	// scoped: every namespace has a Sidecar (egress ./* and
	// istio-system/*) and canary splits stay within a namespace.
	scoped        bool
	createSeconds float64
	// churnRound and canaryRound count the changes made so far (over
	// runs), so that every change changes something.
	churnRound, canaryRound int
}

// churned is the service whose endpoints the current churn round changes.
func (m *mesh) churned() int { return (m.churnRound*37 + 5) % m.services }

// nextChurn moves to the next churn round's service.
func (m *mesh) nextChurn() { m.churnRound++ }

// nextWeight is svc-0's weight for the next canary change: never the
// current one.
func (m *mesh) nextWeight() int32 {
	w := canaryWeight(m.canaryRound)
	m.canaryRound++
	return w
}

const (
	servicePort = 8080
	domain      = "cluster.local"
)

func newMesh(kubeconfig string, services, endpoints, namespaces int) (*mesh, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = 500, 1000
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	ic, err := istioclient.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &mesh{services: services, endpoints: endpoints, namespaces: namespaces, kube: kc, istio: ic}, nil
}

func (m *mesh) namespace(i int) string { return fmt.Sprintf("bench-%d", i%m.namespaces) }
func (m *mesh) service(i int) string   { return fmt.Sprintf("svc-%d", i) }

// host is service i's FQDN.
func (m *mesh) host(i int) string {
	return fmt.Sprintf("%s.%s.svc.%s", m.service(i), m.namespace(i), domain)
}

// clusterName is service i's outbound EDS cluster, as istiod names it.
func (m *mesh) clusterName(i int) string {
	return fmt.Sprintf("outbound|%d||%s", servicePort, m.host(i))
}

// endpointCount is how many endpoints service i has (E spread evenly).
func (m *mesh) endpointCount(i int) int {
	n := m.endpoints / m.services
	if i < m.endpoints%m.services {
		n++
	}
	return n
}

// address returns the k-th fake endpoint address, 10.251.0.1 onwards: not
// loopback (which the API server refuses) and never dialled.
func address(k int) string {
	k++
	return fmt.Sprintf("10.%d.%d.%d", 251+k>>16, (k>>8)&0xff, k&0xff)
}

// create makes every object with a few concurrent workers.
func (m *mesh) create(ctx context.Context) error {
	for n := range m.namespaces {
		ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: m.namespace(n)}}
		if _, err := m.kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating namespace %s: %w", ns.Name, err)
		}
		if m.scoped {
			if err := m.createSidecar(ctx, ns.Name); err != nil {
				return err
			}
		}
	}
	return parallel(ctx, m.services, 16, func(i int) error {
		if err := m.createService(ctx, i); err != nil {
			return err
		}
		if i%10 == 0 {
			return m.createRouting(ctx, i)
		}
		return nil
	})
}

func (m *mesh) createService(ctx context.Context, i int) error {
	ns, name := m.namespace(i), m.service(i)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": name},
			Ports:    []corev1.ServicePort{{Name: "http", Port: servicePort}},
		},
	}
	if _, err := m.kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating service %s/%s: %w", ns, name, err)
	}
	if _, err := m.kube.DiscoveryV1().EndpointSlices(ns).Create(ctx, m.slice(i, 0), metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating endpoint slice of %s/%s: %w", ns, name, err)
	}
	return nil
}

// firstEndpoint is the index of service i's first endpoint address.
func (m *mesh) firstEndpoint(i int) int {
	per, extra := m.endpoints/m.services, m.endpoints%m.services
	return i*per + min(i, extra)
}

// slice is service i's EndpointSlice; generation g > 0 replaces its first
// endpoint by a fresh address (one pod of a rolling update).
func (m *mesh) slice(i, g int) *discoveryv1.EndpointSlice {
	port, portName, ready := int32(servicePort), "http", true
	s := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{Name: m.service(i) + "-1", Namespace: m.namespace(i),
			Labels: map[string]string{discoveryv1.LabelServiceName: m.service(i)}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &portName, Port: &port}},
	}
	first := m.firstEndpoint(i)
	for k := range m.endpointCount(i) {
		addr := address(first + k)
		if k == 0 && g > 0 {
			addr = address(m.endpoints + g) // beyond every original address
		}
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{Addresses: []string{addr},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}
	return s
}

// rollEndpoint replaces one endpoint of service i (a rolling update step)
// and returns when the API server has accepted the write.
func (m *mesh) rollEndpoint(ctx context.Context, i int) error {
	m.epSerial++
	want := m.slice(i, m.epSerial)
	cur, err := m.kube.DiscoveryV1().EndpointSlices(want.Namespace).Get(ctx, want.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	cur.Endpoints = want.Endpoints
	_, err = m.kube.DiscoveryV1().EndpointSlices(want.Namespace).Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// createRouting adds service i's VirtualService (weight% to itself, the
// rest to the next service: the canary) and DestinationRule.
func (m *mesh) createRouting(ctx context.Context, i int) error {
	ns := m.namespace(i)
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: m.service(i), Namespace: ns},
		Spec: *m.vsSpec(i, 90)}
	if _, err := m.istio.NetworkingV1().VirtualServices(ns).Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating VirtualService %s/%s: %w", ns, vs.Name, err)
	}
	dr := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: m.service(i), Namespace: ns},
		Spec: networking.DestinationRule{Host: m.host(i), TrafficPolicy: &networking.TrafficPolicy{
			ConnectionPool: &networking.ConnectionPoolSettings{
				Tcp:  &networking.ConnectionPoolSettings_TCPSettings{MaxConnections: 100},
				Http: &networking.ConnectionPoolSettings_HTTPSettings{Http2MaxRequests: 1000, MaxRequestsPerConnection: 10},
			},
			OutlierDetection: &networking.OutlierDetection{Consecutive_5XxErrors: wrapperspb.UInt32(5),
				Interval: durationpb.New(10e9), BaseEjectionTime: durationpb.New(30e9)},
		}}}
	if _, err := m.istio.NetworkingV1().DestinationRules(ns).Create(ctx, dr, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating DestinationRule %s/%s: %w", ns, dr.Name, err)
	}
	return nil
}

// createSidecar gives namespace ns the Sidecar banks run: its workloads
// reach their own namespace's hosts and istio-system's only.
func (m *mesh) createSidecar(ctx context.Context, ns string) error {
	sc := &networkingv1.Sidecar{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns},
		Spec: networking.Sidecar{Egress: []*networking.IstioEgressListener{{Hosts: []string{"./*", "istio-system/*"}}}}}
	if _, err := m.istio.NetworkingV1().Sidecars(ns).Create(ctx, sc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Sidecar %s/%s: %w", ns, sc.Name, err)
	}
	return nil
}

// splitTo is the service service i's canary sends the rest of its traffic
// to: the next one, or with Sidecars the next one of its own namespace
// (which its namespace's proxies see).
func (m *mesh) splitTo(i int) int {
	if m.scoped && m.services > m.namespaces {
		return (i + m.namespaces) % m.services
	}
	return (i + 1) % m.services
}

func (m *mesh) vsSpec(i int, weight int32) *networking.VirtualService {
	next := m.splitTo(i)
	return &networking.VirtualService{Hosts: []string{m.host(i)}, Http: []*networking.HTTPRoute{{
		Route: []*networking.HTTPRouteDestination{
			{Destination: &networking.Destination{Host: m.host(i), Port: &networking.PortSelector{Number: servicePort}}, Weight: weight},
			{Destination: &networking.Destination{Host: m.host(next), Port: &networking.PortSelector{Number: servicePort}}, Weight: 100 - weight},
		},
	}}}
}

// setWeight shifts service i's canary split and returns when the API
// server has accepted the write.
func (m *mesh) setWeight(ctx context.Context, i int, weight int32) error {
	vsc := m.istio.NetworkingV1().VirtualServices(m.namespace(i))
	cur, err := vsc.Get(ctx, m.service(i), metav1.GetOptions{})
	if err != nil {
		return err
	}
	cur.Spec.Http = m.vsSpec(i, weight).Http
	_, err = vsc.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// parallel runs fn(0..n-1) on workers goroutines, returning the first error.
func parallel(ctx context.Context, n, workers int, fn func(int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
	for i := 0; i < n && ctx.Err() == nil; i++ {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	return first
}
