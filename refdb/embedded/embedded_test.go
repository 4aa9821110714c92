package embedded_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/embedded"
	"github.com/sitesync/sitesync/refdb/refdbtest"
	"github.com/sitesync/sitesync/refdb/tikv"
)

var seq atomic.Int64

func newStore(tb testing.TB) refdb.Store {
	tb.Helper()
	s, err := embedded.Open(fmt.Sprintf("test-%d", seq.Add(1)), tikv.Options{})
	require.NoError(tb, err)
	return s
}

func TestConformance(t *testing.T) { refdbtest.Run(t, newStore) }

func TestLinearizable(t *testing.T) {
	name := fmt.Sprintf("lin-%d", seq.Add(1))
	refdbtest.CheckLinearizable(t, func(tb testing.TB) refdb.Store {
		s, err := embedded.Open(name, tikv.Options{})
		require.NoError(tb, err)
		return s
	}, refdbtest.LinOptions{Seed: 1})
}
