package campaign

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/etcdtest"
	"github.com/sitesync/sitesync/refdb"
	refdbetcd "github.com/sitesync/sitesync/refdb/etcd"
)

// TestReadHistory writes a ref's history through the refdb's own etcd
// store (creation, moves, a deletion, a re-creation, a refused CAS, another
// project beside it) and reads it back, every version in order.
func TestReadHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv := etcdtest.Start(t)
	cli := srv.Client(t)
	store := refdbetcd.New(cli, refdbetcd.Options{Prefix: refdbPrefix})
	cas := func(project, ref, old, new, txn string) error {
		_, err := store.CAS(ctx, project, refdb.Batch{Txn: txn, Site: "a", Updates: []refdb.Update{{Ref: ref, Old: old, New: new}}})
		return err
	}
	steps := []struct{ old, new string }{{ZeroSHA, A}, {A, B}, {B, ZeroSHA}, {ZeroSHA, C}, {C, A}}
	other := ZeroSHA // the value of the refs written between main's
	for i, s := range steps {
		require.NoError(t, cas(Project, main, s.old, s.new, "t"+string(rune('1'+i))))
		require.NoError(t, cas(Project+"/sub", main, other, D, "other"), "a project whose name extends ours")
		require.NoError(t, cas(Project, "refs/heads/b", other, D, "b"))
		other = D
	}
	require.ErrorIs(t, cas(Project, main, B, C, "refused"), refdb.ErrConflict)

	h, err := ReadHistory(ctx, cli, refdbPrefix, Project)
	require.NoError(t, err)
	require.Len(t, h, 2, "main and b, nothing of the other project")
	recs := h[main]
	require.Len(t, recs, len(steps))
	for i, r := range recs {
		require.Equal(t, uint64(i+1), r.Version)
		require.Equal(t, steps[i].new, r.Value)
		require.Equal(t, "t"+string(rune('1'+i)), r.Txn)
		if i > 0 {
			require.Greater(t, r.Rev, recs[i-1].Rev)
		}
	}
	require.Empty(t, Check(Input{History: h}), "a CAS-written history has unbroken chains")

	listed, err := store.List(ctx, Project)
	require.NoError(t, err)
	require.Equal(t, listed, h.Current())
}
