package harness

import (
	"net/http"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// Counter returns the value of counter name whose labels include labels, from
// meshd's /metrics; it fails the test when no such series is exported.
func (m *Meshd) Counter(t testing.TB, name string, labels map[string]string) float64 {
	t.Helper()
	resp, err := http.Get(m.AdminURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	require.NoError(t, err)
	fam, ok := fams[name]
	require.True(t, ok, "%s must be exported", name)
series:
	for _, mt := range fam.GetMetric() {
		have := map[string]string{}
		for _, lp := range mt.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue series
			}
		}
		return mt.GetCounter().GetValue()
	}
	require.Failf(t, "no series", "%s%v is not exported", name, labels)
	return 0
}
