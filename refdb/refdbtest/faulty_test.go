package refdbtest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/refdb"
	"github.com/sitesync/sitesync/refdb/none"
)

func TestFaulty(t *testing.T) {
	ctx := context.Background()
	f := NewFaulty(none.New(nil))
	lost := refdb.Unavailable("cas", errors.New("connection reset"))
	f.Set(func(string, refdb.Batch) error { return lost }, nil)
	_, err := f.CAS(ctx, "p", Batch(refdb.Update{Ref: "refs/heads/a", Old: Z, New: SHA(1)}))
	require.ErrorIs(t, err, refdb.ErrUnavailable)
	recs, err := f.Get(ctx, "p", "refs/heads/a")
	require.NoError(t, err)
	assert.False(t, recs[0].Exists(), "before-commit fault applies nothing")

	f.Set(nil, func(string, refdb.Batch, error) error { return lost })
	_, err = f.CAS(ctx, "p", Batch(refdb.Update{Ref: "refs/heads/a", Old: Z, New: SHA(1)}))
	require.ErrorIs(t, err, refdb.ErrUnavailable)
	recs, err = f.Get(ctx, "p", "refs/heads/a")
	require.NoError(t, err)
	assert.Equal(t, SHA(1), recs[0].Value, "after-commit fault: applied, yet the caller saw an error")
	require.NoError(t, refdb.Ping(ctx, f))
	require.NoError(t, f.Close())
	require.ErrorIs(t, refdb.Ping(ctx, f), refdb.ErrClosed)
}
