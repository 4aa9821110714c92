package none_test

import (
	"testing"

	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/none"
	"github.com/sitesync/sitesync/refdb/refdbtest"
)

func BenchmarkCAS(b *testing.B) {
	refdbtest.Bench(b, func(testing.TB) refdb.Store { return none.New(nil) })
}
