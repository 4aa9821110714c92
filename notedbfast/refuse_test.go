package notedbfast

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// TestRefusals: bad deltas are refused with a clear error and leave the
// peer's object store byte-identical; a write outside the NoteDb patterns
// or over the size limit goes the pack path.
func TestRefusals(t *testing.T) {
	e := gittest.Env(t)
	ctx := ctxT(t)
	s := gittest.NoteDbShape{Changes: 4, Events: 8, Seed: 3}
	origin, writes := gittest.GenerateNoteDb(t, e, s)
	cat := git.NewCatFile(origin)
	t.Cleanup(func() { cat.Close() })

	// The peer holds the history up to the first meta write of a change
	// that has a later meta write: the later one then needs its parent.
	peer := newBare(t, e)
	ap := NewApplier(nil)
	t.Cleanup(func() { ap.Close() })
	var held, later gittest.NoteDbWrite
	metaOf := map[string]int{}
	for _, w := range writes {
		if w.Kind == "meta" {
			metaOf[w.Updates[0].Ref]++
		}
	}
	for i, w := range writes {
		if w.Kind != "meta" || metaOf[w.Updates[0].Ref] < 3 {
			continue
		}
		held = w
		for _, w2 := range writes[i+1:] {
			if w2.Kind == "meta" && w2.Updates[0].Ref == w.Updates[0].Ref && w2.Updates[0].Old != w.Updates[0].New {
				later = w2 // two or more commits after held: parent chain of 2+
				break
			}
		}
		break
	}
	require.NotEmpty(t, later.Updates)
	e.RunInput(t, peer, gittest.WritePack(allObjectsUpTo(writes, held)), "index-pack", "--stdin", "--strict")
	e.Run(t, peer, "update-ref", held.Updates[0].Ref, held.Updates[0].New)

	good := Delta{Project: "p", Txn: "t1", Objects: toObjects(t, later), Updates: toUpdates(later)}
	frame, err := Encode(good)
	require.NoError(t, err)

	badHash := cloneDelta(good)
	badHash.Objects[len(badHash.Objects)-1].Data = append([]byte(nil), badHash.Objects[len(badHash.Objects)-1].Data...)
	badHash.Objects[len(badHash.Objects)-1].Data[10] ^= 1
	_, err = Encode(badHash) // a frame carries no ids: a bad hash reaches the Applier only in a Delta
	require.ErrorIs(t, err, ErrBadHash)

	badObj := cloneDelta(good)
	junk := []byte("tree nothex\n")
	badObj.Objects = append(badObj.Objects, Object{Type: Commit, ID: Hash(Commit, junk), Data: junk})
	badObjFrame, err := Encode(badObj)
	require.NoError(t, err)

	before := listing(t, peer)
	tests := []struct {
		name  string
		frame []byte
		want  error
		msg   string
	}{
		{"wrong hash", nil, ErrBadHash, "content hashes to"},
		{"malformed object", badObjFrame, ErrBadObject, "bad tree line"},
		{"truncated frame", frame[:len(frame)-7], ErrFrame, "bad delta frame"},
		{"truncated header", frame[:5], ErrFrame, "header"},
		{"other version", append([]byte("sndb\x09"), frame[5:]...), ErrVersion, "version 9"},
		{"missing parent", frame, ErrMissingObjects, "objects missing: "},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ds, err := []Delta{badHash}, error(nil)
			if tc.frame != nil {
				ds, err = Decode(tc.frame, Limits{})
			}
			if err == nil {
				require.Len(t, ds, 1)
				err = ap.Apply(ctx, peer, ds[0])
			}
			require.ErrorIs(t, err, tc.want)
			require.ErrorContains(t, err, tc.msg)
			require.Equal(t, before, listing(t, peer), "objects/ changed")
		})
	}

	t.Run("missing parent: chain within bound then applies", func(t *testing.T) {
		ds, err := Decode(frame, Limits{})
		require.NoError(t, err)
		err = ap.Apply(ctx, peer, ds[0])
		var me *MissingError
		require.ErrorAs(t, err, &me)
		// The peer names the missing parent; it has held's meta commit.
		peerHas := []string{held.Updates[0].New}
		_, err = Chain(ctx, cat, me.IDs, peerHas, ChainLimits{MaxBytes: 50})
		require.ErrorIs(t, err, ErrChainTooLong, "past the bound: fall back to a pack")
		require.Equal(t, before, listing(t, peer))
		chain, err := Chain(ctx, cat, me.IDs, peerHas, ChainLimits{})
		require.NoError(t, err)
		require.NotEmpty(t, chain)
		errs := ap.ApplyBatch(ctx, peer, []Delta{{Project: "p", Txn: "chain", Objects: chain}, ds[0]})
		require.NoError(t, errors.Join(errs...))
		// The peer's ref was behind by the chain: it moves from what it had.
		moveRefs(t, e, peer, []Update{{Ref: held.Updates[0].Ref, Old: held.Updates[0].New, New: ds[0].Updates[0].New}})
		e.Run(t, peer, "fsck", "--strict")
	})

	t.Run("batch: one bad delta does not fail the others", func(t *testing.T) {
		next := writes[len(writes)-1]
		peer2 := newBare(t, e)
		e.RunInput(t, peer2, gittest.WritePack(allObjectsUpTo(writes, writes[len(writes)-2])), "index-pack", "--stdin", "--strict")
		d := Delta{Project: "p", Txn: "ok", Objects: toObjects(t, next), Updates: toUpdates(next)}
		errs := ap.ApplyBatch(ctx, peer2, []Delta{badHash, d})
		require.ErrorIs(t, errs[0], ErrBadHash)
		require.NoError(t, errs[1])
	})

	cl, err := NewClassifier(Config{MaxBytes: 200}, nil)
	require.NoError(t, err)
	var create, big gittest.NoteDbWrite
	for _, w := range writes {
		if w.Kind == "create" && create.Kind == "" {
			create = w
		}
		if w.NoteDbOnly() && objBytes(w) > 200 && big.Kind == "" {
			big = w
		}
	}
	for _, tc := range []struct {
		name   string
		w      gittest.NoteDbWrite
		reason string
	}{
		{"ref outside NoteDb patterns", create, `ref "refs/changes/`},
		{"over max bytes", big, "new objects exceed 200 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := cl.Classify(ctx, cat, toUpdates(tc.w))
			require.NoError(t, err)
			require.Equal(t, PathPack, c.Path)
			require.Contains(t, c.Reason, tc.reason)
			require.Empty(t, c.Objects)
		})
	}
}

func objBytes(w gittest.NoteDbWrite) int {
	n := 0
	for _, o := range w.Objects {
		n += len(o.Data)
	}
	return n
}

func allObjectsUpTo(writes []gittest.NoteDbWrite, last gittest.NoteDbWrite) []gittest.GitObject {
	var out []gittest.GitObject
	seen := map[string]bool{}
	for _, w := range writes {
		for _, o := range w.Objects {
			if !seen[o.ID] {
				seen[o.ID] = true
				out = append(out, o)
			}
		}
		if len(w.Updates) > 0 && len(last.Updates) > 0 && w.Updates[len(w.Updates)-1] == last.Updates[len(last.Updates)-1] {
			break
		}
	}
	return out
}

func cloneDelta(d Delta) Delta {
	d.Objects = append([]Object(nil), d.Objects...)
	d.Updates = append([]Update(nil), d.Updates...)
	return d
}
