package etcd_test

import (
	"testing"

	"github.com/sitesync/sitesync/internal/testkit/etcdtest"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/refdbtest"
)

// go test -run XXX -bench . ./refdb/etcd/ (a real etcd process, fsync'd WAL)
func BenchmarkCAS(b *testing.B) {
	srv := etcdtest.Start(b)
	refdbtest.Bench(b, func(tb testing.TB) refdb.Store { return newStore(tb, srv) })
}
