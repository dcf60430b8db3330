package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/xds"
)

// whatIfCall is what the fake ADS server's WhatIf was asked.
type whatIfCall struct {
	base    *model.Snapshot
	changes []model.Change
	sel     xds.WhatIfSelector
}

var lastWhatIf *whatIfCall

func (f *fakeXDS) WhatIf(base *model.Snapshot, changes []model.Change, sel xds.WhatIfSelector) (*xds.WhatIfReport, error) {
	lastWhatIf = &whatIfCall{base, changes, sel}
	switch {
	case !f.ready:
		return nil, xds.ErrNotReady
	case sel.Proxy == "nobody.ns":
		return nil, xds.ErrProxyNotConnected
	case sel.Proxy != "" && sel.All:
		return nil, assert.AnError
	}
	return &xds.WhatIfReport{SnapshotSeq: base.Seq, Changed: true, Notes: []string{"from xds"}}, nil
}

func post(h http.Handler, path, body string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, path, strings.NewReader(body)))
	return rec
}

// TestWhatIfEndpoint: the body is decoded by the wired decoder (with the
// file name and deletion asked for), the query becomes the selector, the
// base is the Store's current Snapshot, and errors map to statuses.
func TestWhatIfEndpoint(t *testing.T) {
	store := model.NewStore()
	store.Apply([]model.Change{{Kind: model.KindNamespace, Name: "ns", Object: &model.Namespace{Name: "ns"}}})
	fx := &fakeXDS{ready: true}
	h := New(fx, store, prometheus.NewRegistry())

	assert.Equal(t, http.StatusNotImplemented, post(h, "/debug/whatif", "x").Code, "not enabled")
	var decoded struct {
		name, data string
		del        bool
	}
	h.EnableWhatIf(func(name string, data []byte, del bool) ([]model.Change, []string) {
		decoded.name, decoded.data, decoded.del = name, string(data), del
		if len(data) == 0 {
			return nil, nil
		}
		return []model.Change{{Kind: model.KindSidecar, Namespace: "ns", Name: "s"}}, []string{"from decoder"}
	})

	rec := post(h, "/debug/whatif?namespace=ns&delete=true&file=c.yaml", "kind: Sidecar")
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "c.yaml", decoded.name)
	assert.Equal(t, "kind: Sidecar", decoded.data)
	assert.True(t, decoded.del)
	assert.Same(t, store.Current(), lastWhatIf.base)
	assert.Equal(t, xds.WhatIfSelector{Namespace: "ns"}, lastWhatIf.sel)
	require.Len(t, lastWhatIf.changes, 1)
	var rep xds.WhatIfReport
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &rep))
	assert.True(t, rep.Changed)
	assert.Equal(t, store.Current().Seq, rep.SnapshotSeq)
	assert.Equal(t, []string{"from decoder", "from xds"}, rep.Notes)

	rec = post(h, "/debug/whatif?all=true", "")
	require.Equal(t, http.StatusOK, rec.Code)
	assert.Equal(t, "change.yaml", decoded.name)
	assert.Contains(t, rec.Body.String(), "change.yaml names no object")
	assert.Equal(t, xds.WhatIfSelector{All: true}, lastWhatIf.sel)

	assert.Equal(t, http.StatusMethodNotAllowed, get(t, h, "/debug/whatif").Code)
	assert.Equal(t, http.StatusBadRequest, post(h, "/debug/whatif?all=yes", "x").Code)
	assert.Equal(t, http.StatusBadRequest, post(h, "/debug/whatif?all=true&proxy=p.ns", "x").Code)
	assert.Equal(t, http.StatusNotFound, post(h, "/debug/whatif?proxy=nobody.ns", "x").Code)
	assert.Equal(t, http.StatusRequestEntityTooLarge, post(h, "/debug/whatif", strings.Repeat("#", MaxWhatIfBody+1)).Code)
	fx.ready = false
	assert.Equal(t, http.StatusServiceUnavailable, post(h, "/debug/whatif", "x").Code)
}
