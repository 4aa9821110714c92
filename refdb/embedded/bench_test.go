package embedded_test

import (
	"testing"

	"github.com/sitesync/sitesync/refdb/refdbtest"
)

// go test -run XXX -bench . ./refdb/embedded/
func BenchmarkCAS(b *testing.B) { refdbtest.Bench(b, newStore) }
