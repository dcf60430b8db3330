package admin

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/xds"
)

// pushFake is fakeXDS with a last push that skipped scopes.
type pushFake struct {
	*fakeXDS
	st xds.PushStatus
}

func (f pushFake) LastPush() xds.PushStatus { return f.st }

// TestPushStatusShowsRebuiltAndSkipped: /debug/push_status says how many
// scopes the last push rebuilt and skipped, why, and what changed.
func TestPushStatusShowsRebuiltAndSkipped(t *testing.T) {
	st := xds.PushStatus{Seq: 9, Trigger: []string{"VirtualService"}, ScopesBuilt: 12, ScopesSkipped: 988,
		RebuildReasons: map[string]int{"VirtualService shop/reviews": 12}, Changed: []string{"VirtualService shop/reviews"}}
	h := New(pushFake{fakeXDS: &fakeXDS{ready: true}, st: st}, model.NewStore(), prometheus.NewRegistry())
	rec := get(t, h, "/debug/push_status")
	require.Equal(t, http.StatusOK, rec.Code)
	var got map[string]any
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &got))
	assert.EqualValues(t, 12, got["scopesBuilt"])
	assert.EqualValues(t, 988, got["scopesSkipped"])
	assert.Equal(t, map[string]any{"VirtualService shop/reviews": float64(12)}, got["rebuildReasons"])
	assert.Equal(t, []any{"VirtualService shop/reviews"}, got["changedConfigs"])
}
