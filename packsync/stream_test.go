package packsync

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/gittest"
)

// A pack stream longer than the receiver's limit is refused with an error
// that names the limit, and leaves the quarantine empty; the same stream
// under a limit it fits goes in.
func TestReceiverPackLimit(t *testing.T) {
	env := gittest.Env(t)
	ctx := context.Background()
	origin, peer, base, tip := sites(t, env)
	body := pack(t, env, origin, false, tip, "^"+base)
	open := func(context.Context, string) (string, error) { return peer, nil }
	header := EncodeHeader(Header{Project: "p", Txn: "txn-1"})

	for _, tc := range []struct {
		name    string
		max     int64
		wantErr string
	}{
		{name: "one byte short", max: int64(len(body)) - 1, wantErr: "pack stream too large: more than"},
		{name: "far too small", max: 12, wantErr: "(mesh.max_pack)"},
		{name: "exactly its size", max: int64(len(body))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := NewReceiver(open, tc.max, nil)
			_, err := r.Handle(ctx, "b", header, bytes.NewReader(body))
			q, cerr := Create(peer, "txn-1")
			require.NoError(t, cerr)
			defer q.Drop()
			packs, _ := filepath.Glob(filepath.Join(q.Dir(), "pack", "*"))
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrPackTooLarge)
				require.ErrorContains(t, err, tc.wantErr)
				require.ErrorIs(t, r.Wait(ctx, "txn-1"), ErrPackTooLarge, "a vote waiting for the pack hears why")
				require.Empty(t, packs, "nothing of a refused pack is kept")
				return
			}
			require.NoError(t, err)
			require.NoError(t, r.Wait(ctx, "txn-1"))
			missing, err := q.Missing(ctx, []string{tip})
			require.NoError(t, err)
			require.Empty(t, missing)
			require.NotEmpty(t, packs)
		})
	}
}
