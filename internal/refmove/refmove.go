// Package refmove is the one shape of a ref's move that every part of
// sitesync speaks — the hook's input, a push's commands, a write through
// the API, a refdb compare-and-set, a ref transaction in a repository, a
// NoteDb delta — and the one zero object id. It imports nothing, so any
// package may use it. Values only; safe for concurrent use.
package refmove

// ZeroID is the object id git uses for "no object": a ref that does not
// exist (as Old: it must not exist yet; as New: it is deleted).
const ZeroID = "0000000000000000000000000000000000000000"

// Update moves Ref from Old to New. Old = ZeroID: the ref must not exist;
// New = ZeroID: the ref is deleted. Where a caller says so, Old = "" skips
// the check of the old value (refs sitesync does not guard).
type Update struct {
	Ref string `json:"ref"`
	Old string `json:"old"`
	New string `json:"new"`
}
