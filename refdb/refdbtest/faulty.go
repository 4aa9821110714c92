package refdbtest

import (
	"context"
	"sync"

	"github.com/sitesync/sitesync/refdb"
)

// Faulty wraps a Store to inject faults around CAS, for tests of the code
// that uses a refdb (STYLE: fault injection by wrapping):
//
//   - BeforeCAS returning an error fails the call before the store sees it
//     (nothing applied);
//   - AfterCAS returning an error replaces the result of a call the store
//     DID apply: the caller sees an error although the batch committed, as
//     when a connection drops after the commit (outcome unknown).
//
// Hooks may be changed between calls with Set; safe for concurrent use.
type Faulty struct {
	refdb.Store
	mu     sync.Mutex
	before func(project string, b refdb.Batch) error
	after  func(project string, b refdb.Batch, err error) error
}

// NewFaulty wraps s with no faults.
func NewFaulty(s refdb.Store) *Faulty { return &Faulty{Store: s} }

// Set installs the hooks (nil: no fault).
func (f *Faulty) Set(before func(project string, b refdb.Batch) error, after func(project string, b refdb.Batch, err error) error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.before, f.after = before, after
}

// CAS implements refdb.Store.
func (f *Faulty) CAS(ctx context.Context, project string, b refdb.Batch) ([]refdb.Record, error) {
	f.mu.Lock()
	before, after := f.before, f.after
	f.mu.Unlock()
	if before != nil {
		if err := before(project, b); err != nil {
			return nil, err
		}
	}
	recs, err := f.Store.CAS(ctx, project, b)
	if after != nil {
		if ferr := after(project, b, err); ferr != nil {
			return nil, ferr
		}
	}
	return recs, err
}
