package tikv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	tikverr "github.com/tikv/client-go/v2/error"
	tikvclient "github.com/tikv/client-go/v2/tikv"
	"github.com/tikv/client-go/v2/txnkv"
	"github.com/tikv/client-go/v2/txnkv/transaction"

	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/internal/keys"
	"github.com/sitesync/sitesync/refdb/internal/retry"
)

var _ refdb.Store = (*Store)(nil)

// removeChunk is how many keys one RemoveProject transaction deletes: well
// under TiKV's transaction size limits, large enough to remove a project
// with millions of refs in reasonable time.
const removeChunk = 2048

// localLatches is the number of client-side latch slots (hash buckets of
// keys); collisions only cost false queueing.
const localLatches = 4096

// KV is the part of a client-go store the backend uses; *tikv.KVStore (and
// thus txnkv.Client.KVStore) implements it.
type KV interface {
	Begin(opts ...tikvclient.TxnOption) (*transaction.KVTxn, error)
	Close() error
}

var _ KV = (*tikvclient.KVStore)(nil)

// Options configure a Store.
type Options struct {
	Prefix string       // key prefix; default refdb.DefaultPrefix
	Log    *slog.Logger // default slog.Default()
	// Now is the clock for Record.Time; default time.Now.
	Now func() time.Time
	// OnClose replaces closing kv in Close (the embedded backend shares one
	// in-process store between several Stores).
	OnClose func() error
}

// Store is a refdb.Store on TiKV.
type Store struct {
	kv      KV
	layout  keys.Layout
	log     *slog.Logger
	now     func() time.Time
	onClose func() error
	closed  atomic.Bool
}

// New returns a Store over kv. Close closes kv unless opts.OnClose is set.
func New(kv KV, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = refdb.DefaultPrefix
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.OnClose == nil {
		opts.OnClose = kv.Close
	}
	return &Store{
		kv:      kv,
		layout:  keys.Layout{Prefix: opts.Prefix},
		log:     opts.Log.With("component", "refdb", "backend", "tikv"),
		now:     opts.Now,
		onClose: opts.OnClose,
	}
}

// Open connects to the TiKV cluster whose PD endpoints are given. client-go's
// constructor takes no context; if ctx ends first Open returns ctx's error
// and closes the client once the constructor returns.
func Open(ctx context.Context, pdEndpoints []string, opts Options) (*Store, error) {
	type result struct {
		c   *txnkv.Client
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := txnkv.NewClient(pdEndpoints)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, refdb.Unavailable(fmt.Sprintf("connect to tikv pd %q", pdEndpoints), r.err)
		}
		// Local latches: concurrent batches of this site on the same refs
		// queue in the client before prewrite, so the loser fails fast
		// (and is re-read) instead of leaving locks in TiKV that readers
		// must wait out. Other sites' races still meet in TiKV.
		r.c.EnableTxnLocalLatches(localLatches)
		return New(r.c.KVStore, opts), nil
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				_ = r.c.Close()
			}
		}()
		return nil, refdb.Unavailable(fmt.Sprintf("connect to tikv pd %q", pdEndpoints), ctx.Err())
	}
}

// Close implements refdb.Store.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.onClose()
}

func (s *Store) begin(op string) (*transaction.KVTxn, error) {
	if s.closed.Load() {
		return nil, refdb.ErrClosed
	}
	txn, err := s.kv.Begin()
	if err != nil {
		return nil, refdb.Unavailable(op, err)
	}
	return txn, nil
}

// read returns the current records of refs as seen by txn's snapshot.
func (s *Store) read(ctx context.Context, txn *transaction.KVTxn, project string, refs []string) ([][]byte, []refdb.Record, error) {
	ks := make([][]byte, len(refs))
	for i, r := range refs {
		ks[i] = s.layout.Ref(project, r)
	}
	vals, err := txn.BatchGet(ctx, ks)
	if err != nil {
		return nil, nil, err
	}
	recs := make([]refdb.Record, len(refs))
	for i, r := range refs {
		v, ok := vals[string(ks[i])]
		if !ok || len(v.Value) == 0 {
			recs[i] = refdb.Missing(r)
			continue
		}
		if recs[i], err = refdb.DecodeRecord(r, v.Value); err != nil {
			return nil, nil, err
		}
	}
	return ks, recs, nil
}

// Get implements refdb.Store.
func (s *Store) Get(ctx context.Context, project string, refs ...string) ([]refdb.Record, error) {
	if err := refdb.ValidateRead(project, refs); err != nil {
		return nil, err
	}
	txn, err := s.begin("get")
	if err != nil {
		return nil, err
	}
	defer func() { _ = txn.Rollback() }()
	_, recs, err := s.read(ctx, txn, project, refs)
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("get refs of %q", project), err)
	}
	return recs, nil
}

// CAS implements refdb.Store.
func (s *Store) CAS(ctx context.Context, project string, b refdb.Batch) ([]refdb.Record, error) {
	if err := refdb.ValidateBatch(project, b); err != nil {
		return nil, err
	}
	refs := make([]string, len(b.Updates))
	for i, u := range b.Updates {
		refs[i] = u.Ref
	}
	for attempt := 1; ; attempt++ {
		if err := retry.Wait(ctx, attempt); err != nil {
			return nil, refdb.Unavailable(fmt.Sprintf("cas in %q", project), err)
		}
		recs, err := s.tryCAS(ctx, project, b, refs)
		if err == nil || !isWriteConflict(err) {
			return recs, err
		}
		// The next attempt reads a fresh snapshot: a ref that really moved
		// ends the loop with a ConflictError naming its current value.
		if attempt == retry.MaxAttempts {
			return nil, refdb.Unavailable(fmt.Sprintf("cas in %q", project),
				fmt.Errorf("%d write conflicts in a row with unchanged values: %w", attempt, err))
		}
		s.log.DebugContext(ctx, "write conflict, retrying", "project", project, "txn", b.Txn, "attempt", attempt)
	}
}

// tryCAS is one transaction. Errors it returns are final (ErrConflict,
// ErrClosed, refdb.Unavailable) except write conflicts, which CAS retries.
func (s *Store) tryCAS(ctx context.Context, project string, b refdb.Batch, refs []string) ([]refdb.Record, error) {
	txn, err := s.begin("cas")
	if err != nil {
		return nil, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = txn.Rollback()
		}
	}()
	// Async commit and 1PC are safe here: they change when a transaction
	// is known committed (after prewrite instead of after the primary's
	// commit), not what it conflicts with, and client-go falls back to 2PC
	// whenever the server or the batch shape does not allow them (too many
	// keys, several regions for 1PC). Causal consistency stays off (the
	// default), so the commit timestamp is taken from a fresh TSO after
	// prewrite: a CAS that succeeded is visible to every later snapshot,
	// which is what makes CAS and Get linearizable.
	txn.SetEnableAsyncCommit(true)
	txn.SetEnable1PC(true)
	ks, cur, err := s.read(ctx, txn, project, refs)
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("cas in %q: read", project), err)
	}
	next, conflict := refdb.Decide(project, b, cur, s.now())
	if conflict != nil {
		return nil, conflict
	}
	for i, r := range next {
		if err := txn.Set(ks[i], refdb.EncodeRecord(r)); err != nil {
			return nil, fmt.Errorf("cas in %q: %w", project, err)
		}
	}
	committed = true // Commit cleans up after itself, also on failure.
	if err := txn.Commit(ctx); err != nil {
		if isWriteConflict(err) {
			return nil, err
		}
		return nil, s.fail(ctx, fmt.Sprintf("cas in %q: commit", project), err)
	}
	return next, nil
}

// List implements refdb.Store.
func (s *Store) List(ctx context.Context, project string) ([]refdb.Record, error) {
	if err := refdb.ValidateProject(project); err != nil {
		return nil, err
	}
	txn, err := s.begin("list")
	if err != nil {
		return nil, err
	}
	defer func() { _ = txn.Rollback() }()
	it, err := txn.Iter(s.layout.Start(project), s.layout.End(project))
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("list %q", project), err)
	}
	defer it.Close()
	var recs []refdb.Record
	for ; it.Valid(); err = it.Next() {
		if err != nil {
			break
		}
		if err = ctx.Err(); err != nil {
			break
		}
		ref, ok := s.layout.RefOf(project, it.Key())
		if !ok {
			continue
		}
		r, derr := refdb.DecodeRecord(ref, it.Value())
		if derr != nil {
			return nil, fmt.Errorf("list %q: %w", project, derr)
		}
		recs = append(recs, r)
	}
	if err != nil {
		return nil, s.fail(ctx, fmt.Sprintf("list %q", project), err)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Ref < recs[j].Ref })
	return recs, nil
}

// RemoveProject implements refdb.Store: chunks of removeChunk keys, one
// transaction each, until the range is empty.
func (s *Store) RemoveProject(ctx context.Context, project string) error {
	if err := refdb.ValidateProject(project); err != nil {
		return err
	}
	for {
		n, err := s.removeSome(ctx, project)
		if err != nil && !isWriteConflict(err) {
			return s.fail(ctx, fmt.Sprintf("remove project %q", project), err)
		}
		if err == nil && n == 0 {
			return nil
		}
		if ctx.Err() != nil {
			return refdb.Unavailable(fmt.Sprintf("remove project %q", project), ctx.Err())
		}
	}
}

func (s *Store) removeSome(ctx context.Context, project string) (int, error) {
	txn, err := s.begin("remove project")
	if err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		if !committed {
			_ = txn.Rollback()
		}
	}()
	it, err := txn.Iter(s.layout.Start(project), s.layout.End(project))
	if err != nil {
		return 0, err
	}
	var ks [][]byte
	for ; err == nil && it.Valid() && len(ks) < removeChunk; err = it.Next() {
		ks = append(ks, append([]byte(nil), it.Key()...))
	}
	it.Close()
	if err != nil {
		return 0, err
	}
	if len(ks) == 0 {
		return 0, nil
	}
	for _, k := range ks {
		if err := txn.Delete(k); err != nil {
			return 0, err
		}
	}
	committed = true
	return len(ks), txn.Commit(ctx)
}

// fail turns a client-go error into the refdb contract: ErrClosed and
// errors already in refdb terms pass through, everything else is
// unavailable (outcome unknown for a commit).
func (s *Store) fail(ctx context.Context, op string, err error) error {
	if errors.Is(err, refdb.ErrClosed) || errors.Is(err, refdb.ErrUnavailable) {
		return err
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return refdb.Unavailable(op, err)
}

func isWriteConflict(err error) bool {
	var latch *tikverr.ErrWriteConflictInLatch
	return tikverr.IsErrWriteConflict(err) || errors.As(err, &latch)
}
