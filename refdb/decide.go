package refdb

import (
	"time"

	"github.com/sitesync/sitesync/internal/refmove"
)

// Decide is the pure decision of a CAS, shared by every backend: given the
// records currently held for the batch's refs (same order as b.Updates;
// missing refs as Record{Value: refmove.ZeroID}), it returns either the records to
// write or the conflicts. No I/O, no clock: now is passed in.
func Decide(project string, b Batch, current []Record, now time.Time) ([]Record, *ConflictError) {
	var conflicts []RefConflict
	for i, u := range b.Updates {
		cur := current[i]
		if cur.Value == "" {
			cur.Value = refmove.ZeroID
		}
		if cur.Value != u.Old {
			cur.Ref = u.Ref
			conflicts = append(conflicts, RefConflict{Ref: u.Ref, Want: u.Old, Current: cur})
		}
	}
	if conflicts != nil {
		return nil, &ConflictError{Project: project, Refs: conflicts}
	}
	next := make([]Record, len(b.Updates))
	for i, u := range b.Updates {
		next[i] = Record{
			Ref:     u.Ref,
			Value:   u.New,
			Version: current[i].Version + 1,
			Site:    b.Site,
			Txn:     b.Txn,
			Time:    now.UTC(),
		}
	}
	return next, nil
}

// Missing is the record of a ref that was never written.
func Missing(ref string) Record { return Record{Ref: ref, Value: refmove.ZeroID} }
