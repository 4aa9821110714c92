package notedbfast

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/git"
	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

func TestCodecRoundTrip(t *testing.T) {
	ds := genDeltas(t, gittest.NoteDbShape{Changes: 3, Events: 5, Seed: 11})
	plain, err := NewCodec(nil, nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		ds   []Delta
	}{
		{"one", ds[:1]},
		{"batch", ds},
		{"delete only", []Delta{{Project: "All-Users", Updates: []Update{{Ref: "refs/users/01/1", Old: ds[0].Updates[0].New, New: refmove.ZeroID}}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, enc := range []func(...Delta) ([]byte, error){Encode, plain.Encode} {
				frame, err := enc(tc.ds...)
				require.NoError(t, err)
				got, err := Decode(frame, Limits{})
				require.NoError(t, err)
				require.Equal(t, normalize(tc.ds), normalize(got))
			}
		})
	}
}

// normalize makes nil and empty slices equal for comparison.
func normalize(ds []Delta) []Delta {
	out := make([]Delta, len(ds))
	for i, d := range ds {
		if len(d.Objects) == 0 {
			d.Objects = nil
		}
		if len(d.Updates) == 0 {
			d.Updates = nil
		}
		for j := range d.Objects {
			if len(d.Objects[j].Data) == 0 {
				d.Objects[j].Data = []byte{}
			}
		}
		out[i] = d
	}
	return out
}

func TestDecodeLimits(t *testing.T) {
	ds := genDeltas(t, gittest.NoteDbShape{Changes: 3, Events: 5, Seed: 12})
	frame, err := Encode(ds...)
	require.NoError(t, err)
	objs, ups := 0, 0
	for _, d := range ds {
		objs += len(d.Objects)
		ups += len(d.Updates)
	}
	// A zstd header (without its magic) declaring a 1 TiB payload: single
	// segment, 8-byte content size.
	huge := append([]byte("\xd2\x01\x01p\x00"), 0xe0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0)
	for _, tc := range []struct {
		name  string
		frame []byte
		lim   Limits
		msg   string
	}{
		{"bytes", frame, Limits{MaxBytes: 100}, "exceeds the limit of 100"},
		{"deltas", frame, Limits{MaxDeltas: len(ds) - 1}, "deltas exceed the limit"},
		{"objects", frame, Limits{MaxObjects: objs - 1}, "objects exceed the limit"},
		{"updates", frame, Limits{MaxUpdates: ups - 1}, "updates exceed the limit"},
		{"declared size", huge, Limits{}, "exceeds the limit"},
		{"not a frame", []byte("PACK\x00\x00\x00\x02"), Limits{}, "not a delta frame"},
		{"bare legacy magic", []byte("sndb"), Limits{}, "not a delta frame"},
		{"empty", nil, Limits{}, "not a delta frame"},
		{"garbage body", append(frame[:len(frame)-20:len(frame)-20], bytes.Repeat([]byte{0x55}, 20)...), Limits{}, "decompress"},
		{"no projects", []byte("\xd2\x00"), Limits{}, "no projects"},
		{"project twice", []byte("\xd2\x02\x01p\x01p"), Limits{}, "named twice"},
		{"truncated project", []byte("\xd2\x01\x05p"), Limits{}, "truncated at project"},
		{"no zstd header", []byte("\xd2\x01\x01p\x00"), Limits{}, "zstd header"},
		{"no bases count", []byte("\xd2\x01\x01p"), Limits{}, "truncated at bases"},
		{"base twice", append(append([]byte("\xd2\x01\x01p\x02"), make([]byte, 20)...), make([]byte, 21)...), Limits{}, "named twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.frame, tc.lim)
			require.ErrorIs(t, err, ErrFrame)
			require.ErrorContains(t, err, tc.msg)
		})
	}
}

func TestEncodeRefuses(t *testing.T) {
	id := Hash(Blob, nil)
	for _, tc := range []struct {
		name string
		d    Delta
		msg  string
	}{
		{"bad ref", Delta{Project: "p", Updates: []Update{{Ref: "refs/x y", Old: refmove.ZeroID, New: id}}}, "invalid ref name"},
		{"not under refs", Delta{Project: "p", Updates: []Update{{Ref: "HEAD", Old: refmove.ZeroID, New: id}}}, "invalid ref name"},
		{"bad id", Delta{Project: "p", Updates: []Update{{Ref: "refs/x", Old: "abc", New: id}}}, "invalid object id"},
		{"bad type", Delta{Project: "p", Objects: []Object{{Type: 9, ID: id}}}, "unknown type"},
		{"id not the hash", Delta{Project: "p", Objects: []Object{{Type: Blob, ID: Hash(Blob, []byte("x"))}}}, "content hashes to"},
		{"no project", Delta{Updates: []Update{{Ref: "refs/x", Old: refmove.ZeroID, New: id}}}, "without a project"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Encode(tc.d)
			require.ErrorContains(t, err, tc.msg)
		})
	}
}

func TestRefName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ref  string
		size int // bytes AppendRefName writes
	}{
		{"meta", "refs/changes/23/12323/meta", 3},
		{"robot comments", "refs/changes/01/1/robot-comments", 1},
		{"largest change", "refs/changes/99/999999999999/meta", 6},
		{"sequence", "refs/sequences/changes", 23},
		{"leading zero", "refs/changes/01/01/meta", 24},
		{"wrong shard", "refs/changes/24/12323/meta", 27},
		{"one-digit shard", "refs/changes/3/3/meta", 22},
		{"other leaf", "refs/changes/23/12323/1", 24},
		{"too large", "refs/changes/00/1000000000000/meta", 36},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := AppendRefName([]byte{7}, tc.ref)
			require.Len(t, b, 1+tc.size)
			got, n, err := ReadRefName(b[1:])
			require.NoError(t, err)
			require.Equal(t, tc.ref, got)
			require.Equal(t, tc.size, n)
		})
	}
	for _, tc := range []struct {
		name string
		in   []byte
		msg  string
	}{
		{"empty", nil, "truncated"},
		{"past the end", []byte{5 << 2, 'r'}, "ref name of 5 bytes"},
		{"change zero", []byte{refMeta}, "change number 0"},
		{"unknown kind", []byte{3}, "unknown ref name encoding"},
		{"spelled out", append([]byte{byte(len("refs/changes/01/1/meta") << 2)}, "refs/changes/01/1/meta"...), "spelled out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := ReadRefName(tc.in)
			require.ErrorContains(t, err, tc.msg)
		})
	}
}

func TestProjects(t *testing.T) {
	ds := genDeltas(t, gittest.NoteDbShape{Changes: 2, Events: 3, Seed: 13})
	ds[1].Project = "All-Users"
	frame, err := Encode(ds...)
	require.NoError(t, err)
	ps, err := Projects(frame)
	require.NoError(t, err)
	require.Equal(t, []string{ds[0].Project, "All-Users"}, ps)
	got, err := Decode(frame, Limits{})
	require.NoError(t, err)
	require.Equal(t, normalize(ds), normalize(got))
	_, err = Projects(append([]byte("sndb\x01"), frame[1:]...))
	require.ErrorIs(t, err, ErrVersion)
	_, err = Projects(append([]byte{frameTag | 3}, frame[1:]...))
	require.ErrorIs(t, err, ErrVersion)
}

// basedHistory is a generated repository's meta writes that move a ref
// from a commit, with their bases read from the repository, and a reader
// of those bases.
func basedHistory(tb testing.TB, seed uint64) ([]Delta, [][]Object, func([]string) ([]Object, error)) {
	tb.Helper()
	e := gittest.Env(tb)
	origin, writes := gittest.GenerateNoteDb(tb, e, gittest.NoteDbShape{Changes: 3, Events: 10, Seed: seed})
	cat := git.NewCatFile(origin)
	tb.Cleanup(func() { cat.Close() })
	var ds []Delta
	var bases [][]Object
	all := map[string]Object{}
	for _, w := range writes {
		if w.Kind != "meta" || w.Updates[0].Old == refmove.ZeroID {
			continue
		}
		d := Delta{Project: "p", Txn: "t", Objects: toObjects(tb, w), Updates: toUpdates(w)}
		bs, err := Bases(ctxT(tb), cat, []Delta{d})
		require.NoError(tb, err)
		for _, o := range bs {
			all[o.ID] = o
		}
		ds, bases = append(ds, d), append(bases, bs)
	}
	read := func(ids []string) ([]Object, error) {
		var out []Object
		var missing []string
		for _, id := range ids {
			o, ok := all[id]
			if !ok {
				missing = append(missing, id)
			}
			out = append(out, o)
		}
		if len(missing) > 0 {
			return nil, &MissingError{IDs: missing}
		}
		return out, nil
	}
	return ds, bases, read
}

func TestEncodeBased(t *testing.T) {
	ds, bases, read := basedHistory(t, 21)
	plain, based := 0, 0
	withTree := 0
	for i, d := range ds {
		require.NotEmpty(t, bases[i], "a meta write from a commit has that commit as a base")
		require.Equal(t, d.Updates[0].Old, bases[i][0].ID)
		if len(bases[i]) > 1 {
			withTree++
		}
		f, err := Encode(d)
		require.NoError(t, err)
		plain += len(f)
		f, err = c0(t).EncodeBased(bases[i], d)
		require.NoError(t, err)
		based += len(f)
		got, err := c0(t).DecodeBased(f, Limits{}, read)
		require.NoError(t, err)
		require.Equal(t, normalize([]Delta{d}), normalize(got))
		ids, err := BaseIDs(f)
		require.NoError(t, err)
		require.Len(t, ids, len(bases[i]))
		require.Equal(t, bases[i][0].ID, ids[0])
		pf, err := Encode(d)
		require.NoError(t, err)
		ids, err = BaseIDs(pf)
		require.NoError(t, err)
		require.Empty(t, ids, "a plain frame names no bases")

		_, err = Decode(f, Limits{})
		require.ErrorIs(t, err, ErrFrame)
		require.ErrorContains(t, err, "the reader was not given")
		_, err = c0(t).DecodeBased(f, Limits{}, func(ids []string) ([]Object, error) { return nil, &MissingError{IDs: ids} })
		require.ErrorIs(t, err, ErrMissingObjects)
		if len(bases[i]) > 1 {
			_, err = c0(t).DecodeBased(f, Limits{}, func(ids []string) ([]Object, error) {
				out, err := read(ids)
				out[0], out[1] = out[1], out[0]
				return out, err
			})
			require.ErrorContains(t, err, "base 0 is")
		}
	}
	require.NotZero(t, withTree, "some writes also have their old notes tree as a base")
	t.Logf("%d meta writes: %d bytes framed plain, %d against their bases (%.2f)", len(ds), plain, based, float64(based)/float64(plain))
	require.Less(t, based, plain)

	// A batch against the bases of all its writes.
	var all []Object
	for _, bs := range bases {
		all = append(all, bs...)
	}
	f, err := c0(t).EncodeBased(all, ds...)
	require.NoError(t, err)
	got, err := c0(t).DecodeBased(f, Limits{}, read)
	require.NoError(t, err)
	require.Equal(t, normalize(ds), normalize(got))

	bad := bases[0][0]
	bad.Data = append([]byte("x"), bad.Data...)
	_, err = c0(t).EncodeBased([]Object{bad}, ds[0])
	require.ErrorIs(t, err, ErrBadHash)
	_, err = c0(t).DecodeBased(f, Limits{}, func(ids []string) ([]Object, error) {
		out, err := read(ids)
		out[0].Data = bad.Data
		return out, err
	})
	require.ErrorIs(t, err, ErrBadHash)
}

// c0 is the default codec.
func c0(tb testing.TB) *Codec {
	tb.Helper()
	c, err := defaultCodec()
	require.NoError(tb, err)
	return c
}

func TestVerify(t *testing.T) {
	tree := Object{Type: Tree, ID: "4b825dc642cb6eb9a060e54bf8d69288fbee4904", Data: []byte{}}
	commit := func(s string) Object { return Object{Type: Commit, ID: Hash(Commit, []byte(s)), Data: []byte(s)} }
	good := "tree " + tree.ID + "\nparent " + tree.ID + "\nauthor A <a@x> 1 +0000\ncommitter C <c@x> 2 -0130\n\nmsg\n"
	entry := func(mode, name string) string { return mode + " " + name + "\x00" + string(make([]byte, 20)) }
	treeObj := func(s string) Object { return Object{Type: Tree, ID: Hash(Tree, []byte(s)), Data: []byte(s)} }
	for _, tc := range []struct {
		name  string
		o     Object
		links int
		msg   string
	}{
		{"empty tree", tree, 0, ""},
		{"commit", commit(good), 2, ""},
		{"bad hash", Object{Type: Blob, ID: tree.ID, Data: []byte("x")}, 0, "content hashes to"},
		{"no author", commit("tree " + tree.ID + "\ncommitter C <c@x> 2 +0000\n"), 0, "missing author"},
		{"bad date", commit("tree " + tree.ID + "\nauthor A <a@x> 01 +0000\ncommitter C <c@x> 2 +0000\n"), 0, "bad date"},
		{"bad zone", commit("tree " + tree.ID + "\nauthor A <a@x> 1 0000\ncommitter C <c@x> 2 +0000\n"), 0, "bad time zone"},
		{"tree", treeObj(entry("100644", "a") + entry("40000", "b")), 1, ""},
		{"tree gitlink", treeObj(entry("160000", "m")), 0, ""},
		{"tree order", treeObj(entry("100644", "b") + entry("100644", "a")), 0, "out of order"},
		{"tree dup", treeObj(entry("100644", "a") + entry("100644", "a")), 0, "out of order"},
		{"tree .git", treeObj(entry("40000", ".GIT")), 0, "forbidden"},
		{"tree mode", treeObj(entry("100664", "a")), 0, "bad mode"},
		{"tree truncated", treeObj(entry("100644", "a")[:10]), 0, "truncated"},
		{"tag", Object{Type: Tag, ID: Hash(Tag, []byte("object "+tree.ID+"\ntype tree\ntag v1\ntagger T <t@x> 5 +0000\n\nm\n")),
			Data: []byte("object " + tree.ID + "\ntype tree\ntag v1\ntagger T <t@x> 5 +0000\n\nm\n")}, 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			links, err := Verify(tc.o)
			if tc.msg != "" {
				require.ErrorContains(t, err, tc.msg)
				return
			}
			require.NoError(t, err)
			require.Len(t, links, tc.links)
		})
	}
}

// FuzzDecode: Decode never panics and bounds its work; whatever it accepts
// encodes back to an equal frame payload (round trip).
func FuzzDecode(f *testing.F) {
	ds := genDeltas(f, gittest.NoteDbShape{Changes: 2, Events: 4, Seed: 5})
	plain, err := NewCodec(nil, nil)
	if err != nil {
		f.Fatal(err)
	}
	for i := range ds {
		frame, err := Encode(ds[i])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
		frame, _ = plain.Encode(ds[i])
		f.Add(frame)
	}
	all, _ := Encode(ds...)
	f.Add(all)
	bds, bases, read := basedHistory(f, 22)
	for i := range min(4, len(bds)) {
		frame, err := c0(f).EncodeBased(bases[i], bds[i])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
	}
	f.Add([]byte("\xd2\x00"))
	f.Add([]byte("\xd2\x01\x01p"))
	lim := Limits{MaxBytes: 1 << 20, MaxObjects: 1000, MaxUpdates: 1000, MaxDeltas: 100}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := c0(t).DecodeBased(b, lim, read)
		if err != nil {
			return
		}
		var bs []Object
		if h, err := readHeader(b, lim); err == nil && len(h.bases) > 0 {
			bs, _ = read(h.bases)
		}
		frame, err := c0(t).EncodeBased(bs, got...)
		if err != nil {
			t.Fatalf("decoded deltas do not encode: %v", err)
		}
		again, err := c0(t).DecodeBased(frame, lim, read)
		if err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
		p1, _ := Payload(got...)
		p2, _ := Payload(again...)
		if !bytes.Equal(p1, p2) {
			t.Fatal("round trip changed the payload")
		}
		for _, d := range got {
			for _, o := range d.Objects {
				_, _ = Verify(o) // must not panic on any content
			}
		}
	})
}

// fuzzProjects is the project table of a frame of ds.
func fuzzProjects(ds []Delta) []string {
	ps, _, _ := marshal(ds)
	return ps
}

// FuzzPayload reaches the payload parser directly (compressed mutations
// rarely decompress): it never panics, bounds its allocations, and what it
// accepts marshals back to the same bytes.
func FuzzPayload(f *testing.F) {
	ds := genDeltas(f, gittest.NoteDbShape{Changes: 2, Events: 4, Seed: 6})
	for i := range ds {
		p, err := Payload(ds[i])
		if err != nil {
			f.Fatal(err)
		}
		f.Add(p)
	}
	all, _ := Payload(ds...)
	f.Add(all)
	lim := Limits{MaxBytes: 1 << 20, MaxObjects: 1000, MaxUpdates: 1000, MaxDeltas: 100}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := unmarshal(b, fuzzProjects(ds), lim)
		if err != nil {
			return
		}
		ps, p, err := marshal(got)
		if err != nil {
			t.Fatalf("accepted payload does not marshal: %v", err)
		}
		again, err := unmarshal(p, ps, lim)
		if err != nil {
			t.Fatalf("re-marshalled payload does not parse: %v", err)
		}
		require.Equal(t, normalize(got), normalize(again))
	})
}
