package admin

import (
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/meshd/meshd/internal/model"
	"github.com/meshd/meshd/xds"
)

// MaxWhatIfBody bounds the change a /debug/whatif request may carry.
const MaxWhatIfBody = 1 << 20

// ChangeDecoder decodes a change file (YAML documents) named name into
// Store changes as meshd's providers would make them — deletions of the
// objects it names when del is set — and notes for the caller (warnings).
// cmd/meshd wires discovery/file's, so this package stays free of
// Kubernetes types.
type ChangeDecoder func(name string, data []byte, del bool) (changes []model.Change, notes []string)

// EnableWhatIf turns /debug/whatif on, decoding changes with decode. Call
// it before serving.
func (h *Handler) EnableWhatIf(decode ChangeDecoder) { h.decode = decode }

// whatIf answers POST /debug/whatif: the body is the change (YAML, at most
// MaxWhatIfBody bytes); the query selects what is reported (proxy=,
// namespace=, all=true), delete=true makes it a deletion of the objects
// named, and file= names the change in sources and errors (default
// change.yaml). The answer is an xds.WhatIfReport. Nothing is applied.
func (h *Handler) whatIf(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "POST the change's YAML to /debug/whatif")
		return
	}
	if h.decode == nil {
		writeError(w, http.StatusNotImplemented, "what-if is not enabled in this server")
		return
	}
	q := r.URL.Query()
	flag := func(name string) (bool, error) {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return false, errors.New("query parameter " + name + ": want true or false")
			}
			return b, nil
		}
		return false, nil
	}
	all, err1 := flag("all")
	del, err2 := flag("delete")
	if err := errors.Join(err1, err2); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	name := q.Get("file")
	if name == "" || len(name) > 256 {
		name = "change.yaml"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxWhatIfBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, "the change is larger than "+strconv.Itoa(MaxWhatIfBody)+" bytes")
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "reading the change: "+err.Error())
		return
	}
	changes, notes := h.decode(name, body, del)
	if len(changes) == 0 {
		notes = append(notes, name+" names no object")
	}
	sel := xds.WhatIfSelector{Proxy: q.Get("proxy"), Namespace: q.Get("namespace"), All: all}
	rep, err := h.xds.WhatIf(h.store.Current(), changes, sel)
	switch {
	case errors.Is(err, xds.ErrNotReady):
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	case errors.Is(err, xds.ErrWhatIfBusy):
		writeError(w, http.StatusTooManyRequests, err.Error())
		return
	case errors.Is(err, xds.ErrProxyNotConnected):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rep.Notes = append(notes, rep.Notes...)
	writeJSON(w, http.StatusOK, rep)
}
