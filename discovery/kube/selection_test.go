package kube

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	meshconfig "istio.io/api/mesh/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func ns(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

// TestDiscoverySelectors: selectors are OR'd; matchLabels and
// matchExpressions within one selector are AND'd; none selects everything.
func TestDiscoverySelectors(t *testing.T) {
	s, err := newSelection(nil)
	require.NoError(t, err)
	assert.True(t, s.admits(ns("any", nil)), "no selectors: every namespace")

	s, err = newSelection([]*meshconfig.LabelSelector{
		{MatchLabels: map[string]string{"team": "payments"}},
		{MatchLabels: map[string]string{"env": "prod"}, MatchExpressions: []*meshconfig.LabelSelectorRequirement{
			{Key: "tier", Operator: "In", Values: []string{"core", "edge"}},
		}},
	})
	require.NoError(t, err)
	for _, c := range []struct {
		labels map[string]string
		want   bool
	}{
		{map[string]string{"team": "payments"}, true},
		{map[string]string{"env": "prod", "tier": "core"}, true},
		{map[string]string{"env": "prod"}, false},
		{map[string]string{"env": "prod", "tier": "batch"}, false},
		{nil, false},
	} {
		assert.Equal(t, c.want, s.admits(ns("x", c.labels)), "%v", c.labels)
	}

	_, err = newSelection([]*meshconfig.LabelSelector{{MatchExpressions: []*meshconfig.LabelSelectorRequirement{
		{Key: "tier", Operator: "Sometimes"},
	}}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "discoverySelectors[0]", "the error names the selector")
}
