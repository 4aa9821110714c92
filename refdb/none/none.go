package none

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
)

var _ refdb.Store = (*Store)(nil)

// Store is a refdb.Store without checks.
type Store struct {
	now    func() time.Time
	closed atomic.Bool

	mu       sync.Mutex                         // guards projects
	projects map[string]map[string]refdb.Record // project → ref → record
}

// New returns an empty Store; now defaults to time.Now.
func New(now func() time.Time) *Store {
	if now == nil {
		now = time.Now
	}
	return &Store{now: now, projects: map[string]map[string]refdb.Record{}}
}

// Get implements refdb.Store.
func (s *Store) Get(_ context.Context, project string, refs ...string) ([]refdb.Record, error) {
	if err := refdb.ValidateRead(project, refs); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, refdb.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := make([]refdb.Record, len(refs))
	for i, r := range refs {
		rec, ok := s.projects[project][r]
		if !ok {
			rec = refdb.Missing(r)
		}
		recs[i] = rec
	}
	return recs, nil
}

// CAS implements refdb.Store: it applies every valid batch, ignoring Old.
func (s *Store) CAS(_ context.Context, project string, b refdb.Batch) ([]refdb.Record, error) {
	if err := refdb.ValidateBatch(project, b); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, refdb.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	refs := s.projects[project]
	if refs == nil {
		refs = map[string]refdb.Record{}
		s.projects[project] = refs
	}
	cur := make([]refdb.Record, len(b.Updates))
	forced := b
	forced.Updates = make([]refdb.Update, len(b.Updates))
	for i, u := range b.Updates {
		cur[i] = refs[u.Ref]
		u.Old = cur[i].Value
		if u.Old == "" {
			u.Old = refmove.ZeroID
		}
		forced.Updates[i] = u
	}
	next, _ := refdb.Decide(project, forced, cur, s.now()) // cannot conflict: Old is the current value
	for _, r := range next {
		refs[r.Ref] = r
	}
	return next, nil
}

// List implements refdb.Store.
func (s *Store) List(_ context.Context, project string) ([]refdb.Record, error) {
	if err := refdb.ValidateProject(project); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, refdb.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	recs := make([]refdb.Record, 0, len(s.projects[project]))
	for _, r := range s.projects[project] {
		recs = append(recs, r)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Ref < recs[j].Ref })
	return recs, nil
}

// RemoveProject implements refdb.Store.
func (s *Store) RemoveProject(_ context.Context, project string) error {
	if err := refdb.ValidateProject(project); err != nil {
		return err
	}
	if s.closed.Load() {
		return refdb.ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.projects, project)
	return nil
}

// Close implements refdb.Store.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}
