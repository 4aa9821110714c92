package tikv_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/embedded"
	"github.com/sitesync/sitesync/refdb/refdbtest"
	"github.com/sitesync/sitesync/refdb/tikv"
)

// newMockStore returns a tikv.Store over a fresh client-go mock TiKV: the
// same transaction code as production, no PD or TiKV process.
func newMockStore(tb testing.TB) *tikv.Store {
	tb.Helper()
	kv, err := embedded.NewKV()
	require.NoError(tb, err)
	return tikv.New(kv, tikv.Options{Prefix: "/test"})
}

func TestConformance(t *testing.T) {
	refdbtest.Run(t, func(tb testing.TB) refdb.Store { return newMockStore(tb) })
}

// BenchmarkCAS runs on client-go's mock TiKV (no network, no Raft): it
// measures the client transaction path, not a cluster.
func BenchmarkCAS(b *testing.B) {
	refdbtest.Bench(b, func(tb testing.TB) refdb.Store { return newMockStore(tb) })
}

// countHandler counts log records with a given message.
type countHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}
func (h countHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countHandler) WithGroup(string) slog.Handler      { return h }

// TestWriteConflictRetried: concurrent same-value rewrites make TiKV report
// write conflicts at prewrite; the backend re-reads, finds the batch still
// applicable and retries, so every call succeeds.
func TestWriteConflictRetried(t *testing.T) {
	kv, err := embedded.NewKV()
	require.NoError(t, err)
	var retries atomic.Int64
	s := tikv.New(kv, tikv.Options{Log: slog.New(countHandler{"write conflict, retrying", &retries})})
	defer s.Close()
	ctx := context.Background()
	const ref = "refs/heads/hot"
	_, err = s.CAS(ctx, "p", refdbtest.Batch(refdb.Update{Ref: ref, Old: refmove.ZeroID, New: refdbtest.SHA(1)}))
	require.NoError(t, err)
	var wg sync.WaitGroup
	var failures atomic.Int64
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 25 {
				if _, err := s.CAS(ctx, "p", refdbtest.Batch(refdb.Update{Ref: ref, Old: refdbtest.SHA(1), New: refdbtest.SHA(1)})); err != nil {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.Zero(t, failures.Load())
	require.Positive(t, retries.Load(), "the workload produced write conflicts")
	recs, err := s.Get(ctx, "p", ref)
	require.NoError(t, err)
	require.Equal(t, uint64(201), recs[0].Version)
	t.Logf("%d write conflicts retried", retries.Load())
}
