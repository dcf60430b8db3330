package convert

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/meshd/meshd/internal/model"
)

func ptr[T any](v T) *T { return &v }

func TestPortProtocol(t *testing.T) {
	tests := []struct {
		name        string
		port        string
		appProtocol *string
		want        model.Protocol
	}{
		{"name http", "http", nil, model.ProtocolHTTP},
		{"name prefix", "http-web", nil, model.ProtocolHTTP},
		{"name grpc", "grpc", nil, model.ProtocolGRPC},
		{"name grpc-web prefix", "grpc-web-ui", nil, model.ProtocolGRPCWeb},
		{"name tcp prefix", "tcp-db", nil, model.ProtocolTCP},
		{"name case-insensitive", "HTTP2-x", nil, model.ProtocolHTTP2},
		{"unknown name", "web", nil, model.ProtocolUnsupported},
		{"empty name", "", nil, model.ProtocolUnsupported},
		{"appProtocol wins over name", "tcp", ptr("http"), model.ProtocolHTTP},
		{"appProtocol grpc", "", ptr("grpc"), model.ProtocolGRPC},
		{"appProtocol h2c", "http", ptr("kubernetes.io/h2c"), model.ProtocolHTTP2},
		{"appProtocol ws", "", ptr("kubernetes.io/ws"), model.ProtocolHTTP},
		{"appProtocol wss", "", ptr("kubernetes.io/wss"), model.ProtocolHTTPS},
		{"appProtocol prefixed", "", ptr("http-alt"), model.ProtocolHTTP},
		{"unknown appProtocol ignores name", "http", ptr("example.com/custom"), model.ProtocolUnsupported},
		{"grpc-web without dash", "grpc-webui", nil, model.ProtocolGRPCWeb},
		{"h2c is no port name prefix", "h2c-x", nil, model.ProtocolUnsupported},
		{"every istio prefix", "mongo-a", nil, model.ProtocolMongo},
		{"redis", "redis", nil, model.ProtocolRedis},
		{"mysql", "mysql-primary", nil, model.ProtocolMySQL},
		{"tls", "tls-passthrough", nil, model.ProtocolTLS},
		{"https", "https", nil, model.ProtocolHTTPS},
		{"prefix must be followed by a dash", "httpx", nil, model.ProtocolUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, PortProtocol(tt.port, tt.appProtocol))
		})
	}
}

// Ports without a known protocol on 3306 are MySQL, as istiod guesses;
// numeric targetPorts are kept, named ones are left to the endpoints.
func TestServicePortsGuessAndTargetPort(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{
			{Name: "db", Port: 3306, TargetPort: intstr.FromInt32(13306)},
			{Name: "http", Port: 80, TargetPort: intstr.FromString("web")},
		}},
	}
	got, err := Service(svc, "")
	require.NoError(t, err)
	assert.Equal(t, []model.Port{
		{Name: "http", Port: 80, Protocol: model.ProtocolHTTP},
		{Name: "db", Port: 3306, Protocol: model.ProtocolMySQL, TargetPort: 13306},
	}, got.Ports)
}

func TestService(t *testing.T) {
	created := metav1.NewTime(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC))
	base := func() *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{
				Name: "reviews", Namespace: "shop", CreationTimestamp: created,
				Labels:      map[string]string{"app": "reviews"},
				Annotations: map[string]string{ExportToAnnotation: " . , shop-ui ,"},
			},
			Spec: corev1.ServiceSpec{
				ClusterIP: "10.0.0.1", ClusterIPs: []string{"10.0.0.1", "fd00::1"},
				Selector: map[string]string{"app": "reviews"},
				Ports: []corev1.ServicePort{
					{Name: "grpc", Port: 9090, Protocol: corev1.ProtocolTCP},
					{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
					{Name: "http", Port: 9080, Protocol: corev1.ProtocolTCP},
					{Name: "metrics", Port: 15000, AppProtocol: ptr("http")},
				},
			},
		}
	}
	tests := []struct {
		name   string
		mutate func(*corev1.Service)
		domain string
		check  func(*testing.T, *model.Service)
	}{
		{
			name: "full service", domain: "",
			check: func(t *testing.T, s *model.Service) {
				assert.Equal(t, "reviews.shop.svc.cluster.local", s.Hostname)
				assert.Equal(t, []model.Port{
					{Name: "http", Port: 9080, Protocol: model.ProtocolHTTP},
					{Name: "grpc", Port: 9090, Protocol: model.ProtocolGRPC},
					{Name: "metrics", Port: 15000, Protocol: model.ProtocolHTTP},
				}, s.Ports, "sorted by number, UDP dropped")
				assert.Equal(t, []string{"10.0.0.1", "fd00::1"}, s.VIPs)
				assert.Equal(t, []string{".", "shop-ui"}, s.ExportTo)
				assert.Equal(t, map[string]string{"app": "reviews"}, s.Selector)
				assert.Equal(t, map[string]string{"app": "reviews"}, s.Labels)
				assert.Equal(t, created.Time, s.CreatedAt)
				assert.Equal(t, model.KindService, s.Origin)
				assert.Equal(t, model.ResolutionEDS, s.Resolution)
			},
		},
		{
			name: "custom domain", domain: "bank.local",
			check: func(t *testing.T, s *model.Service) {
				assert.Equal(t, "reviews.shop.svc.bank.local", s.Hostname)
			},
		},
		{
			name: "headless has no VIP",
			mutate: func(s *corev1.Service) {
				s.Spec.ClusterIP, s.Spec.ClusterIPs = corev1.ClusterIPNone, []string{corev1.ClusterIPNone}
			},
			check: func(t *testing.T, s *model.Service) { assert.Empty(t, s.VIPs) },
		},
		{
			name:   "clusterIP without clusterIPs",
			mutate: func(s *corev1.Service) { s.Spec.ClusterIPs = nil },
			check:  func(t *testing.T, s *model.Service) { assert.Equal(t, []string{"10.0.0.1"}, s.VIPs) },
		},
		{
			name:   "no exportTo annotation",
			mutate: func(s *corev1.Service) { s.Annotations = nil },
			check:  func(t *testing.T, s *model.Service) { assert.Nil(t, s.ExportTo) },
		},
		{
			name: "external name",
			mutate: func(s *corev1.Service) {
				s.Spec = corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "db.example.com",
					Selector: map[string]string{"x": "y"}, Ports: []corev1.ServicePort{{Name: "tcp", Port: 5432}}}
			},
			check: func(t *testing.T, s *model.Service) {
				assert.Equal(t, model.ResolutionDNS, s.Resolution)
				assert.Nil(t, s.Selector)
				assert.Empty(t, s.VIPs)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := base()
			if tt.mutate != nil {
				tt.mutate(svc)
			}
			got, err := Service(svc, tt.domain)
			require.NoError(t, err)
			tt.check(t, got)
		})
	}
}

func TestServiceErrors(t *testing.T) {
	tests := []struct {
		name      string
		svc       *corev1.Service
		wantField string
	}{
		{"missing name", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "a"}}, "metadata.name"},
		{"missing namespace", &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a"}}, "metadata.namespace"},
		{"port out of range", &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "b"},
			Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "x", Port: 70000}}},
		}, "spec.ports[1].port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Service(tt.svc, "")
			var oe *model.ObjectError
			require.True(t, errors.As(err, &oe), "want *model.ObjectError, got %v", err)
			assert.Equal(t, model.KindService, oe.Kind)
			assert.Equal(t, tt.wantField, oe.Field)
		})
	}
}

func TestPod(t *testing.T) {
	tests := []struct {
		name      string
		pod       *corev1.Pod
		want      *model.Workload
		wantField string
	}{
		{
			name: "service account given",
			pod: &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "r1", Namespace: "shop", Labels: map[string]string{"app": "reviews"}},
				Spec:       corev1.PodSpec{ServiceAccountName: "reviews"},
				Status:     corev1.PodStatus{PodIP: "10.1.0.5"},
			},
			want: &model.Workload{Name: "r1", Namespace: "shop", IP: "10.1.0.5",
				Labels: map[string]string{"app": "reviews"}, ServiceAccount: "reviews"},
		},
		{
			name: "default service account, no IP yet",
			pod:  &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "r2", Namespace: "shop"}},
			want: &model.Workload{Name: "r2", Namespace: "shop", ServiceAccount: "default"},
		},
		{
			name: "bad pod IP",
			pod: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "r3", Namespace: "shop"},
				Status: corev1.PodStatus{PodIP: "10.1.0"}},
			wantField: "status.podIP",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Pod(tt.pod)
			if tt.wantField != "" {
				var oe *model.ObjectError
				require.ErrorAs(t, err, &oe)
				assert.Equal(t, tt.wantField, oe.Field)
				assert.Equal(t, "r3", oe.Name)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestNamespace(t *testing.T) {
	got := Namespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{"a": "b"}}})
	assert.Equal(t, &model.Namespace{Name: "shop", Labels: map[string]string{"a": "b"}}, got)
	assert.Nil(t, Namespace(nil))
}
