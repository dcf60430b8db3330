package xds

import (
	"sync"

	"github.com/meshd/meshd/translate"
)

// wireMemo remembers the encodings of one push's resources and virtual
// hosts, by value: a resource shared by several scopes or views is
// encoded once. Values translate carries from push to push keep their
// encoding with them (translate.Index.Attachment), so those are encoded
// once for as long as they are served. A nil *wireMemo remembers nothing.
type wireMemo struct {
	m sync.Map
	x *translate.Index // nil: nothing carried
}

func newWireMemo(x *translate.Index) *wireMemo { return &wireMemo{x: x} }

// load returns the encoding of v (a resource or a virtual host).
func (w *wireMemo) load(v any) (any, bool) {
	if w == nil {
		return nil, false
	}
	if e, ok := w.m.Load(v); ok {
		return e, true
	}
	if w.x != nil {
		if slot := w.x.Attachment(v); slot != nil {
			if e := slot.Load(); e != nil {
				w.m.Store(v, e)
				return e, true
			}
		}
	}
	return nil, false
}

// store remembers v's encoding e.
func (w *wireMemo) store(v, e any) {
	if w == nil {
		return
	}
	w.m.Store(v, e)
	if w.x != nil {
		if slot := w.x.Attachment(v); slot != nil {
			slot.Store(e)
		}
	}
}
