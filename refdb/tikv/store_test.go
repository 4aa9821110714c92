package tikv_test

import (
	"testing"

	"github.com/stretchr/testify/require"

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
