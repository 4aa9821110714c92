package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/internal/keys"
	"github.com/sitesync/sitesync/refdb/internal/retry"
)

var _ refdb.Store = (*Store)(nil)

// DefaultMaxTxnOps is etcd's default --max-txn-ops.
const DefaultMaxTxnOps = refdb.DefaultMaxTxnOps

// listPage is how many keys one List request fetches: pages keep responses
// well under gRPC's message limits for projects with millions of refs.
const listPage = 1000

// Options configure a Store.
type Options struct {
	Prefix string       // key prefix; default refdb.DefaultPrefix
	Log    *slog.Logger // default slog.Default()
	Now    func() time.Time
	// MaxTxnOps is the server's --max-txn-ops; default DefaultMaxTxnOps.
	MaxTxnOps int
	// DialTimeout for Open; default refdb.DefaultDialTimeout.
	DialTimeout time.Duration
}

// Store is a refdb.Store on etcd.
type Store struct {
	cli    *clientv3.Client
	owned  bool
	layout keys.Layout
	log    *slog.Logger
	now    func() time.Time
	maxOps int
	closed atomic.Bool
	seen   seen
}

// Open connects to etcd. The connection is made lazily by the client: Open
// does not fail when etcd is down, calls do (refdb.ErrUnavailable).
func Open(ctx context.Context, endpoints []string, opts Options) (*Store, error) {
	if opts.DialTimeout == 0 {
		opts.DialTimeout = refdb.DefaultDialTimeout
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: opts.DialTimeout,
		Context:     context.WithoutCancel(ctx),
		Logger:      zap.NewNop(), // errors reach the caller; the client's own logs are noise
		// Keepalives notice a dead member while a call waits, so the
		// client can switch endpoints before the caller's deadline.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
	})
	if err != nil {
		return nil, refdb.Unavailable(fmt.Sprintf("connect to etcd %q", endpoints), err)
	}
	s := New(cli, opts)
	s.owned = true
	return s, nil
}

// New returns a Store over an existing client; Close does not close cli.
func New(cli *clientv3.Client, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = refdb.DefaultPrefix
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.MaxTxnOps == 0 {
		opts.MaxTxnOps = DefaultMaxTxnOps
	}
	return &Store{
		cli:    cli,
		layout: keys.Layout{Prefix: opts.Prefix},
		log:    opts.Log.With("component", "refdb", "backend", "etcd"),
		now:    opts.Now,
		maxOps: opts.MaxTxnOps,
	}
}

// MaxBatch implements refdb.BatchLimiter: the server's --max-txn-ops, as
// configured (Options.MaxTxnOps).
func (s *Store) MaxBatch() int { return s.maxOps }

// Close implements refdb.Store.
func (s *Store) Close() error {
	if s.closed.Swap(true) || !s.owned {
		return nil
	}
	return s.cli.Close()
}

func (s *Store) fail(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return refdb.Unavailable(op, err)
}

// decode turns the range responses of a Txn (one per ref, in order) into
// records and the keys' mod revisions (0: absent).
func decode(refs []string, resps []*pb.ResponseOp) ([]refdb.Record, []int64, error) {
	if len(resps) != len(refs) {
		return nil, nil, fmt.Errorf("etcd answered %d reads for %d refs", len(resps), len(refs))
	}
	recs := make([]refdb.Record, len(refs))
	revs := make([]int64, len(refs))
	for i, r := range refs {
		kvs := resps[i].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			recs[i] = refdb.Missing(r)
			continue
		}
		rec, err := refdb.DecodeRecord(r, kvs[0].Value)
		if err != nil {
			return nil, nil, err
		}
		recs[i], revs[i] = rec, kvs[0].ModRevision
	}
	return recs, revs, nil
}

func (s *Store) keys(project string, refs []string) ([]string, []clientv3.Op) {
	ks := make([]string, len(refs))
	gets := make([]clientv3.Op, len(refs))
	for i, r := range refs {
		ks[i] = string(s.layout.Ref(project, r))
		gets[i] = clientv3.OpGet(ks[i])
	}
	return ks, gets
}

// Get implements refdb.Store: one Txn of Gets per MaxTxnOps refs, all at the
// revision of the first, so the result is one snapshot.
func (s *Store) Get(ctx context.Context, project string, refs ...string) ([]refdb.Record, error) {
	if err := refdb.ValidateRead(project, refs); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, refdb.ErrClosed
	}
	recs := make([]refdb.Record, 0, len(refs))
	var rev int64
	for start := 0; start < len(refs); start += s.maxOps {
		chunk := refs[start:min(start+s.maxOps, len(refs))]
		ks := make([]string, len(chunk))
		ops := make([]clientv3.Op, len(chunk))
		for i, r := range chunk {
			ks[i] = string(s.layout.Ref(project, r))
			if rev == 0 {
				ops[i] = clientv3.OpGet(ks[i])
			} else {
				ops[i] = clientv3.OpGet(ks[i], clientv3.WithRev(rev))
			}
		}
		resp, err := s.cli.Txn(ctx).Then(ops...).Commit()
		if err != nil {
			return nil, s.fail(ctx, fmt.Sprintf("get refs of %q", project), err)
		}
		rev = resp.Header.Revision
		got, revs, err := decode(chunk, resp.Responses)
		if err != nil {
			return nil, fmt.Errorf("get refs of %q: %w", project, err)
		}
		s.seen.store(ks, got, revs)
		recs = append(recs, got...)
	}
	return recs, nil
}

// CAS implements refdb.Store.
func (s *Store) CAS(ctx context.Context, project string, b refdb.Batch) ([]refdb.Record, error) {
	if err := refdb.ValidateBatch(project, b); err != nil {
		return nil, err
	}
	if len(b.Updates) > s.maxOps {
		return nil, fmt.Errorf("%w: batch of %d refs exceeds etcd's max-txn-ops (%d, refdb.max_txn_ops)", refdb.ErrInvalid, len(b.Updates), s.maxOps)
	}
	if s.closed.Load() {
		return nil, refdb.ErrClosed
	}
	refs := make([]string, len(b.Updates))
	for i, u := range b.Updates {
		refs[i] = u.Ref
	}
	ks, gets := s.keys(project, refs)
	cur, revs, hit := s.seen.lookup(ks)
	if hit {
		// A conflict against cached values may be stale: read first.
		_, conflict := refdb.Decide(project, b, cur, s.now())
		hit = conflict == nil
	}
	if !hit {
		resp, err := s.cli.Txn(ctx).Then(gets...).Commit()
		if err != nil {
			return nil, s.fail(ctx, fmt.Sprintf("cas in %q: read", project), err)
		}
		if cur, revs, err = decode(refs, resp.Responses); err != nil {
			return nil, fmt.Errorf("cas in %q: %w", project, err)
		}
		s.seen.store(ks, cur, revs)
	}
	for attempt := 1; ; attempt++ {
		if err := retry.Wait(ctx, attempt); err != nil {
			return nil, refdb.Unavailable(fmt.Sprintf("cas in %q", project), err)
		}
		next, conflict := refdb.Decide(project, b, cur, s.now())
		if conflict != nil {
			return nil, conflict
		}
		cmps := make([]clientv3.Cmp, len(ks))
		puts := make([]clientv3.Op, len(ks))
		for i, k := range ks {
			cmps[i] = clientv3.Compare(clientv3.ModRevision(k), "=", revs[i])
			puts[i] = clientv3.OpPut(k, string(refdb.EncodeRecord(next[i])))
		}
		resp, err := s.cli.Txn(ctx).If(cmps...).Then(puts...).Else(gets...).Commit()
		if err != nil {
			// Timeouts and lost connections leave the outcome unknown.
			return nil, s.fail(ctx, fmt.Sprintf("cas in %q: commit", project), err)
		}
		if resp.Succeeded {
			now := make([]int64, len(ks))
			for i := range now {
				now[i] = resp.Header.Revision // every put of the Txn has its revision
			}
			s.seen.store(ks, next, now)
			return next, nil
		}
		// Some key moved since the read: the Else branch read them all at
		// the failed Txn's revision; decide again against those values.
		if cur, revs, err = decode(refs, resp.Responses); err != nil {
			return nil, fmt.Errorf("cas in %q: %w", project, err)
		}
		s.seen.store(ks, cur, revs)
		if attempt == retry.MaxAttempts {
			return nil, refdb.Unavailable(fmt.Sprintf("cas in %q", project),
				fmt.Errorf("%d concurrent rewrites in a row with unchanged values", attempt))
		}
	}
}

// List implements refdb.Store: pages of listPage keys, all read at the
// revision of the first page.
func (s *Store) List(ctx context.Context, project string) ([]refdb.Record, error) {
	if err := refdb.ValidateProject(project); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		return nil, refdb.ErrClosed
	}
	start, end := s.layout.Start(project), string(s.layout.End(project))
	var recs []refdb.Record
	var rev int64
	key := string(start)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		resp, err := s.cli.Get(ctx, key, opts...)
		if err != nil {
			return nil, s.fail(ctx, fmt.Sprintf("list %q", project), err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			ref, ok := s.layout.RefOf(project, kv.Key)
			if !ok {
				continue
			}
			r, err := refdb.DecodeRecord(ref, kv.Value)
			if err != nil {
				return nil, fmt.Errorf("list %q: %w", project, err)
			}
			recs = append(recs, r)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return recs, nil
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// RemoveProject implements refdb.Store with one range delete (atomic here).
func (s *Store) RemoveProject(ctx context.Context, project string) error {
	if err := refdb.ValidateProject(project); err != nil {
		return err
	}
	if s.closed.Load() {
		return refdb.ErrClosed
	}
	s.seen.forget()
	_, err := s.cli.Delete(ctx, string(s.layout.Start(project)), clientv3.WithRange(string(s.layout.End(project))))
	s.seen.forget()
	if err != nil {
		return s.fail(ctx, fmt.Sprintf("remove project %q", project), err)
	}
	return nil
}
