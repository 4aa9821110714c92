package notedbfast

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// TestReplicateGeneratedHistory replays a generated NoteDb history from one
// bare repository into another: NoteDb-only writes as deltas (classify at
// the origin, encode, decode and apply at the peer, move refs with
// update-ref), everything else as a pack. The peer ends with the origin's
// refs and is fsck-clean.
func TestReplicateGeneratedHistory(t *testing.T) {
	e := gittest.Env(t)
	ctx := ctxT(t)
	origin, writes := gittest.GenerateNoteDb(t, e, gittest.NoteDbShape{Changes: 15, Events: 10, Seed: 7})
	peer := newBare(t, e)
	cat := git.NewCatFile(origin)
	t.Cleanup(func() { cat.Close() })
	cl, err := NewClassifier(Config{}, nil)
	require.NoError(t, err)
	ap := NewApplier(nil)
	t.Cleanup(func() { ap.Close() })

	var deltas, packs int
	for i, w := range writes {
		us := toUpdates(w)
		c, err := cl.Classify(ctx, cat, us)
		require.NoError(t, err, "write %d", i)
		require.Equal(t, w.NoteDbOnly(), c.Path == PathDelta, "write %d (%s): %s", i, w.Kind, c.Reason)
		if c.Path == PathDelta {
			deltas++
			// The classifier finds exactly the objects the write added.
			require.ElementsMatch(t, ids(toObjects(t, w)), ids(c.Objects), "write %d", i)
			frame, err := Encode(Delta{Project: "p", Txn: "t", Objects: c.Objects, Updates: us})
			require.NoError(t, err)
			got, err := Decode(frame, Limits{})
			require.NoError(t, err)
			require.Len(t, got, 1)
			require.NoError(t, ap.Apply(ctx, peer, got[0]), "write %d", i)
			moveRefs(t, e, peer, got[0].Updates)
			continue
		}
		packs++
		var wants, haves []string
		for _, u := range us {
			wants = append(wants, u.New)
			if u.Old != refmove.ZeroID {
				haves = append(haves, u.Old)
			}
		}
		var pack bytes.Buffer
		require.NoError(t, git.PackObjects(ctx, origin, wants, haves, &pack))
		_, err = git.IndexPack(ctx, peer, &pack, git.IndexPackOptions{})
		require.NoError(t, err)
		moveRefs(t, e, peer, us)
	}
	require.Positive(t, deltas)
	require.Positive(t, packs)
	require.Equal(t, e.Refs(t, origin), e.Refs(t, peer))
	e.Run(t, peer, "fsck", "--strict", "--no-dangling")
	t.Logf("%d writes: %d deltas, %d packs", len(writes), deltas, packs)
}

// TestReplicateBatched replays the same kind of history with runs of
// consecutive NoteDb writes coalesced into one frame and one ApplyBatch (as
// group commit does), through each way of storing objects.
func TestReplicateBatched(t *testing.T) {
	e := gittest.Env(t)
	ctx := ctxT(t)
	origin, writes := gittest.GenerateNoteDb(t, e, gittest.NoteDbShape{Changes: 10, Events: 12, Seed: 8})
	for _, store := range []Store{StoreAuto, StoreLoose, StorePack} {
		t.Run(fmt.Sprint(store), func(t *testing.T) {
			peer := newBare(t, e)
			ap := NewApplierStore(nil, store)
			t.Cleanup(func() { ap.Close() })
			var run []Delta
			maxRun := 0
			flush := func() {
				if len(run) == 0 {
					return
				}
				frame, err := Encode(run...)
				require.NoError(t, err)
				ds, err := Decode(frame, Limits{})
				require.NoError(t, err)
				require.NoError(t, errors.Join(ap.ApplyBatch(ctx, peer, ds)...))
				for _, d := range ds {
					moveRefs(t, e, peer, d.Updates)
				}
				maxRun = max(maxRun, len(run))
				run = nil
			}
			for i, w := range writes {
				if w.NoteDbOnly() {
					run = append(run, Delta{Project: "p", Txn: fmt.Sprint(i), Objects: toObjects(t, w), Updates: toUpdates(w)})
					continue
				}
				flush()
				e.RunInput(t, peer, gittest.WritePack(w.Objects), "index-pack", "--stdin", "--strict")
				moveRefs(t, e, peer, toUpdates(w))
			}
			flush()
			require.Equal(t, e.Refs(t, origin), e.Refs(t, peer))
			e.Run(t, peer, "fsck", "--strict", "--no-dangling")
			require.Greater(t, maxRun, 8)
		})
	}
}

func ids(objs []Object) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.ID)
	}
	return out
}
