package refdb

import (
	"context"
	"time"

	"github.com/sitesync/sitesync/internal/refmove"
)

// Update moves one ref from Old to New (refmove.Update, the one shape of a
// ref's move). Both are 40-character lower-case hex object names;
// refmove.ZeroID stands for "absent".
type Update = refmove.Update

// Batch is one atomic compare-and-set: every update applies, or none does.
// Txn and Site are recorded on every ref the batch writes, so that a peer
// holding a prepared transaction can find out from the refdb alone whether its
// transaction won (DESIGN.md §4, invariant 5).
type Batch struct {
	Txn     string // the coordinator's transaction id; required
	Site    string // the site committing the batch; required
	Updates []Update
}

// Record is what the refdb holds for one ref.
type Record struct {
	Ref string
	// Value is the ref's current object name, or refmove.ZeroID if the ref does not
	// exist: either it was never written (Version 0) or it was deleted
	// (Version > 0, a tombstone, kept so versions keep growing).
	Value string
	// Version counts the writes of this ref. It only grows, also across a
	// delete and a re-create; sites apply refdb values in Version order.
	Version uint64
	Site    string    // site whose batch wrote this version
	Txn     string    // transaction id of that batch
	Time    time.Time // when the batch was decided, by the committing process's clock (informational: order by Version)
}

// Exists reports whether the ref currently exists.
func (r Record) Exists() bool { return r.Value != refmove.ZeroID && r.Value != "" }

// Store is the refdb contract. All methods are safe for concurrent use and
// return when ctx is done at the latest.
//
// Ownership: slices passed in are only read, never kept; slices returned are
// owned by the caller.
//
// Errors: [ErrInvalid] (bad project, ref, value or batch; nothing was tried),
// [ErrConflict] as a [*ConflictError] (the CAS was evaluated and rejected;
// nothing changed), [ErrClosed] (Close was called). Any other error, which
// wraps [ErrUnavailable] or the context's error, means the store could not be
// reached or did not answer in time: for CAS the outcome is then UNKNOWN — the
// batch was applied whole or not at all, and the caller finds out which by
// reading the refs back and comparing Record.Txn with its own.
type Store interface {
	// Get returns one record per ref, in the order asked, read from one
	// consistent snapshot. A ref that was never written comes back with
	// Value refmove.ZeroID and Version 0; a missing ref is not an error.
	Get(ctx context.Context, project string, refs ...string) ([]Record, error)

	// CAS applies b atomically: for each update the ref's current value
	// must equal Old, then it becomes New (a tombstone if New is refmove.ZeroID)
	// with Version+1, b.Site, b.Txn and the commit time. On success it
	// returns the new records in the order of b.Updates. A ref may appear
	// only once in a batch.
	CAS(ctx context.Context, project string, b Batch) ([]Record, error)

	// List returns every record of the project, deleted refs (tombstones)
	// included, sorted by ref and read from one consistent snapshot. It is
	// how a site catches up after being away.
	List(ctx context.Context, project string) ([]Record, error)

	// RemoveProject forgets every record of the project, tombstones
	// included, so versions start again at 0. It is an administrative
	// operation for a project deleted at every site; it is not atomic with
	// respect to concurrent CAS on the same project, and a failed call may
	// leave part of the records behind (call it again).
	RemoveProject(ctx context.Context, project string) error

	// Close releases the store's connections. It is idempotent; calls made
	// after Close return ErrClosed.
	Close() error
}

// BatchLimiter is implemented by a Store whose CAS takes fewer than
// MaxBatch updates (etcd: the server's --max-txn-ops).
type BatchLimiter interface {
	MaxBatch() int
}

// BatchLimit is the most updates one CAS of s takes: the store's own limit
// (BatchLimiter) when it has one, else MaxBatch. It looks through wrappers
// that have an Unwrap() Store method. A larger write is either refused
// (all or nothing) or decided in several batches.
func BatchLimit(s Store) int {
	for s != nil {
		if l, ok := s.(BatchLimiter); ok {
			return min(l.MaxBatch(), MaxBatch)
		}
		u, ok := s.(interface{ Unwrap() Store })
		if !ok {
			break
		}
		s = u.Unwrap()
	}
	return MaxBatch
}
