package none_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/none"
	"github.com/sitesync/sitesync/refdb/refdbtest"
)

// TestAcceptsEverything shows what "none" means: a CAS whose Old is wrong
// still succeeds (no split-brain protection), but input is still validated.
func TestAcceptsEverything(t *testing.T) {
	ctx := context.Background()
	s := none.New(nil)
	defer s.Close()
	const ref = "refs/heads/main"
	for i, tc := range []struct {
		name     string
		old, new string
	}{
		{"create", refmove.ZeroID, refdbtest.SHA(1)},
		{"create again", refmove.ZeroID, refdbtest.SHA(2)},
		{"wrong old", refdbtest.SHA(9), refdbtest.SHA(3)},
		{"delete with wrong old", refdbtest.SHA(9), refmove.ZeroID},
	} {
		recs, err := s.CAS(ctx, "p", refdbtest.Batch(refdb.Update{Ref: ref, Old: tc.old, New: tc.new}))
		require.NoError(t, err, tc.name)
		assert.Equal(t, tc.new, recs[0].Value, tc.name)
		assert.Equal(t, uint64(i+1), recs[0].Version, tc.name)
		got, err := s.Get(ctx, "p", ref)
		require.NoError(t, err)
		assert.Equal(t, recs[0], got[0], tc.name)
	}
	_, err := s.CAS(ctx, "p", refdbtest.Batch(refdb.Update{Ref: ref, Old: refmove.ZeroID, New: "nope"}))
	require.ErrorIs(t, err, refdb.ErrInvalid)
	list, err := s.List(ctx, "p")
	require.NoError(t, err)
	assert.Len(t, list, 1)
	require.NoError(t, s.RemoveProject(ctx, "p"))
	list, err = s.List(ctx, "p")
	require.NoError(t, err)
	assert.Empty(t, list)
	require.NoError(t, s.Close())
	_, err = s.Get(ctx, "p", ref)
	require.ErrorIs(t, err, refdb.ErrClosed)
}
