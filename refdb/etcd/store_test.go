package etcd_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/testkit/etcdtest"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/etcd"
	"github.com/sitesync/sitesync/refdb/refdbtest"
)

var prefixSeq atomic.Int64

// newStore opens a Store on srv with a key prefix of its own.
func newStore(tb testing.TB, srv *etcdtest.Server) *etcd.Store {
	tb.Helper()
	return newStoreWithPrefix(tb, srv, fmt.Sprintf("/t%d", prefixSeq.Add(1)))
}

func newStoreWithPrefix(tb testing.TB, srv *etcdtest.Server, prefix string) *etcd.Store {
	tb.Helper()
	s, err := etcd.Open(context.Background(), []string{srv.Endpoint}, etcd.Options{Prefix: prefix})
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	srv := etcdtest.Start(t)
	refdbtest.Run(t, func(tb testing.TB) refdb.Store { return newStore(tb, srv) })
}

func TestBatchOverMaxTxnOps(t *testing.T) {
	srv := etcdtest.Start(t)
	s := newStore(t, srv)
	var ups []refdb.Update
	for i := range etcd.DefaultMaxTxnOps + 1 {
		ups = append(ups, refdb.Update{Ref: fmt.Sprintf("refs/heads/b%d", i), Old: refmove.ZeroID, New: refdbtest.SHA(1)})
	}
	_, err := s.CAS(context.Background(), "p", refdbtest.Batch(ups...))
	require.ErrorIs(t, err, refdb.ErrInvalid)
	require.ErrorContains(t, err, "max-txn-ops")
}

// TestGetManyRefs: a Get of more refs than one etcd Txn may hold is split
// into several Txns read at one revision.
func TestGetManyRefs(t *testing.T) {
	srv := etcdtest.Start(t)
	s := newStore(t, srv)
	ctx := context.Background()
	var refs []string
	for i := 0; i < 300; i += 100 {
		var ups []refdb.Update
		for j := i; j < i+100; j++ {
			ref := fmt.Sprintf("refs/heads/r%03d", j)
			refs = append(refs, ref)
			ups = append(ups, refdb.Update{Ref: ref, Old: refmove.ZeroID, New: refdbtest.SHA(uint64(j + 1))})
		}
		_, err := s.CAS(ctx, "p", refdbtest.Batch(ups...))
		require.NoError(t, err)
	}
	recs, err := s.Get(ctx, "p", append(refs, "refs/heads/missing")...)
	require.NoError(t, err)
	require.Len(t, recs, 301)
	for i, r := range recs[:300] {
		require.Equal(t, refs[i], r.Ref)
		require.Equal(t, refdbtest.SHA(uint64(i+1)), r.Value)
	}
	require.False(t, recs[300].Exists())
}

// TestStaleCache: a Store whose cache of a ref is stale (another Store
// wrote it since) neither overwrites the newer value nor refuses a write
// that is right against etcd.
func TestStaleCache(t *testing.T) {
	srv := etcdtest.Start(t)
	prefix := fmt.Sprintf("/t%d", prefixSeq.Add(1))
	a, b := newStoreWithPrefix(t, srv, prefix), newStoreWithPrefix(t, srv, prefix)
	ctx := context.Background()
	x, y, z, w := sha('x'), sha('y'), sha('z'), sha('w')
	cas := func(s *etcd.Store, site, old, new string) ([]refdb.Record, error) {
		return s.CAS(ctx, "p", refdb.Batch{Txn: "t-" + site + new[:4], Site: site, Updates: []refdb.Update{{Ref: "refs/heads/main", Old: old, New: new}}})
	}
	_, err := cas(a, "a", refmove.ZeroID, x)
	require.NoError(t, err)
	_, err = cas(a, "a", x, y) // a's cache now says y
	require.NoError(t, err)
	_, err = b.Get(ctx, "p", "refs/heads/main")
	require.NoError(t, err)
	_, err = cas(b, "b", y, z) // etcd says z; a does not know
	require.NoError(t, err)

	// Against its stale cache a would move y → w: etcd refuses, naming z.
	_, err = cas(a, "a", y, w)
	var conflict *refdb.ConflictError
	require.ErrorAs(t, err, &conflict)
	require.Equal(t, z, conflict.Refs[0].Current.Value)
	require.Equal(t, "b", conflict.Refs[0].Current.Site)

	// b's write after a's stale read: a, told z by etcd now, succeeds.
	_, err = cas(b, "b", z, x)
	require.NoError(t, err)
	recs, err := cas(a, "a", x, w) // a's cache says z: it reads etcd instead of refusing
	require.NoError(t, err)
	require.Equal(t, w, recs[0].Value)
	require.Equal(t, uint64(5), recs[0].Version)
}

func sha(c byte) string {
	b := make([]byte, 40)
	for i := range b {
		b[i] = "0123456789abcdef"[(int(c)+i)%16]
	}
	return string(b)
}
