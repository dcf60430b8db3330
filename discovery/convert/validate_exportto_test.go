package convert

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd/meshd/internal/model"
)

func TestValidateExportTo(t *testing.T) {
	tests := []struct {
		exportTo  []string
		allowNone bool
		wantField string // "" when valid
		wantMsg   string
	}{
		{nil, false, "", ""},
		{[]string{"."}, false, "", ""},
		{[]string{"*"}, false, "", ""},
		{[]string{".", "loan", "card"}, false, "", ""},
		{[]string{"~"}, true, "", ""},
		{[]string{"~"}, false, "x[0]", "only allowed for Services and ServiceEntries"},
		{[]string{"~", "loan"}, true, "x[0]", "must be the only entry"},
		{[]string{"loan", "~"}, true, "x[1]", "must be the only entry"},
		{[]string{".", "*"}, false, "x[1]", "must be the only entry"},
		{[]string{"Loan_1"}, false, "x[0]", "namespace name"},
		{[]string{""}, false, "x[0]", "namespace name"},
		{[]string{"loan", "loan"}, false, "x[1]", "repeated"},
		{[]string{".", "shop"}, false, "x[1]", "repeated"},
	}
	for _, tt := range tests {
		fe := validateExportTo(tt.exportTo, "shop", "x", tt.allowNone)
		if tt.wantField == "" {
			assert.Nil(t, fe, "%q", tt.exportTo)
			continue
		}
		require.NotNil(t, fe, "%q", tt.exportTo)
		assert.Equal(t, tt.wantField, fe.field, "%q", tt.exportTo)
		assert.Contains(t, fe.msg, tt.wantMsg, "%q", tt.exportTo)
	}
}

// spec.exportTo is checked per kind: "~" only for ServiceEntries.
func TestSpecExportToRejected(t *testing.T) {
	tests := []struct {
		kind model.Kind
		spec string
		ok   bool
	}{
		{model.KindVirtualService, `{hosts: [a], exportTo: [".", loan], http: [{route: [{destination: {host: a}}]}]}`, true},
		{model.KindVirtualService, `{hosts: [a], exportTo: ["~"], http: [{route: [{destination: {host: a}}]}]}`, false},
		{model.KindVirtualService, `{hosts: [a], exportTo: ["*", loan], http: [{route: [{destination: {host: a}}]}]}`, false},
		{model.KindDestinationRule, `{host: a, exportTo: ["."]}`, true},
		{model.KindDestinationRule, `{host: a, exportTo: ["~"]}`, false},
		{model.KindServiceEntry, `{hosts: [a.example], exportTo: ["~"], ports: [{number: 80, name: http}], resolution: DNS}`, true},
		{model.KindServiceEntry, `{hosts: [a.example], exportTo: ["~", "."], ports: [{number: 80, name: http}], resolution: DNS}`, false},
	}
	for _, tt := range tests {
		cfg, err := convertYAML(t, tt.kind, tt.spec)
		if tt.ok {
			assert.NoError(t, err, tt.spec)
			assert.NotNil(t, cfg)
			continue
		}
		var oe *model.ObjectError
		require.ErrorAs(t, err, &oe, tt.spec)
		assert.Equal(t, "spec.exportTo[0]", oe.Field, tt.spec)
		assert.Equal(t, "obj", oe.Name)
	}
}

func TestServiceExportToAnnotationRejected(t *testing.T) {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "shop",
			Annotations: map[string]string{ExportToAnnotation: "loan, ~"}},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "tcp", Port: 5432}}},
	}
	_, err := Service(svc, "")
	var oe *model.ObjectError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, "metadata.annotations[networking.istio.io/exportTo][1]", oe.Field)
	assert.Contains(t, oe.Message, `"~" must be the only entry`)

	svc.Annotations[ExportToAnnotation] = "~"
	got, err := Service(svc, "")
	require.NoError(t, err)
	assert.Equal(t, []string{"~"}, got.ExportTo)
}
