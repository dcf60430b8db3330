package model

// With returns the Snapshot s would become if changes were applied, and the
// changes that change something (as Store.Apply counts them), without
// publishing it: no Store holds it and no subscriber hears of it. s is left
// as it is (Snapshots are copy on write). Its Seq is s.Seq+1, a number a
// later published Snapshot may carry too, so it must never be pushed; it
// answers "what if" questions (meshctl what-if).
func (s *Snapshot) With(changes []Change) (*Snapshot, []Change) {
	return s.apply(changes)
}
