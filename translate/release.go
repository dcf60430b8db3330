package translate

// ReleaseMemos drops what the Index memoised while scopes were built (the
// per-view outputs and validation results), so that their memory can be
// reclaimed once no scope is being built; Builds after it compute them
// again. The Index is otherwise unchanged, and Builds running meanwhile
// are unaffected (they keep the views they hold). Values carried to the
// next Index are kept (carry.go).
func (x *Index) ReleaseMemos() {
	x.views.mu.Lock()
	x.views.m = nil
	x.views.mu.Unlock()
	x.checked.errs.Clear()
	x.checked.refs.Clear()
	x.viewChecks.Clear()
	x.shared.m.Clear()
}
