package kube

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	networking "istio.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/meshd/meshd/e2e/harness"
	"github.com/meshd/meshd/internal/model"
)

// TestInvalidVirtualServiceSkipped: a VirtualService with a bad regex is
// skipped with a Warning Event on it and an entry in /debug/configz; the
// valid VirtualService keeps routing.
func TestInvalidVirtualServiceSkipped(t *testing.T) {
	c := newCluster(t)
	m := startMeshd(t, "invalid-system")
	canaryMesh(t, c, "invalid", 6)
	_, err := c.istio.NetworkingV1().VirtualServices("invalid").Create(c.ctx,
		weighted("invalid", "good", "echo.invalid.svc.cluster.local", 0, 100), metav1.CreateOptions{})
	require.NoError(t, err)
	bad := weighted("invalid", "bad", "other.invalid.svc.cluster.local", 100, 0)
	bad.Spec.Http[0].Match = []*networking.HTTPMatchRequest{{
		Uri: &networking.StringMatch{MatchType: &networking.StringMatch_Regex{Regex: "/api/(["}},
	}}
	_, err = c.istio.NetworkingV1().VirtualServices("invalid").Create(c.ctx, bad, metav1.CreateOptions{})
	require.NoError(t, err, "the API server accepts it: regexes are checked by the control plane")

	var msg string
	require.Eventually(t, func() bool {
		evs, err := c.kube.CoreV1().Events("invalid").List(c.ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("involvedObject.name", "bad").String()})
		require.NoError(t, err)
		for _, e := range evs.Items {
			if e.Type == "Warning" && e.InvolvedObject.Kind == "VirtualService" {
				msg = e.Reason + ": " + e.Message
				return true
			}
		}
		return false
	}, 15*time.Second, 100*time.Millisecond, "a Warning Event must be recorded on VirtualService invalid/bad")
	t.Logf("event: %s", msg)
	assert.Contains(t, msg, "regex")

	// /debug/configz shows the error once the next push has run.
	var oe *model.ObjectError
	require.Eventually(t, func() bool {
		oe = configzError(t, m, "VirtualService", "invalid", "bad")
		return oe != nil
	}, 15*time.Second, 50*time.Millisecond, "/debug/configz must show the error on invalid/bad")
	assert.Contains(t, oe.Field, "regex", "the error names the field: %+v", oe)

	node := nodeID("client", "invalid")
	conn := harness.DialXDS(t, m.XDSAddr, node, "invalid", "xds:///echo.invalid.svc.cluster.local:7070")
	require.Eventually(t, func() bool { return harness.Spread(t, conn, 20)["v2"] == 20 },
		20*time.Second, 100*time.Millisecond, "the valid VirtualService keeps routing everything to v2")
}

// configzError returns the error /debug/configz reports for an object, nil
// if none.
func configzError(t *testing.T, m *harness.Meshd, kind, ns, name string) *model.ObjectError {
	for _, e := range configzErrors(t, m) {
		if string(e.Kind) == kind && e.Namespace == ns && e.Name == name {
			return &e
		}
	}
	return nil
}

// configzErrors returns every error /debug/configz reports, on objects and
// on their own.
func configzErrors(t *testing.T, m *harness.Meshd) []model.ObjectError {
	var configz struct {
		Configs []struct {
			Errors []model.ObjectError
		}
		Errors []model.ObjectError
	}
	m.GetJSON(t, "/debug/configz", &configz)
	errs := configz.Errors
	for _, cfg := range configz.Configs {
		errs = append(errs, cfg.Errors...)
	}
	return errs
}
