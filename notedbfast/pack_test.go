package notedbfast

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

// noteDbBatch returns the distinct objects of every write of a generated
// NoteDb history (commits, trees, blobs, all links inside the set).
func noteDbBatch(tb testing.TB, s gittest.NoteDbShape) []Object {
	tb.Helper()
	var objs []Object
	seen := map[string]bool{}
	for _, w := range gittest.NoteDbWrites(s) {
		for _, o := range toObjects(tb, w) {
			if !seen[o.ID] {
				seen[o.ID] = true
				objs = append(objs, o)
			}
		}
	}
	return objs
}

func blobOf(data []byte) Object { return Object{Type: Blob, ID: Hash(Blob, data), Data: data} }

// packCases are batches whose packs and indexes are compared with git's:
// size headers of one to several bytes, an empty object, incompressible
// data, and a NoteDb history.
func packCases(tb testing.TB) []struct {
	name string
	objs []Object
} {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	var sizes []Object
	for _, n := range []int{0, 1, 15, 16, 17, 2047, 2048, 2049, 1 << 20} {
		sizes = append(sizes, blobOf(bytes.Repeat([]byte{'x'}, n)))
	}
	return []struct {
		name string
		objs []Object
	}{
		{name: "one blob", objs: []Object{blobOf([]byte("hello\n"))}},
		{name: "empty tree", objs: []Object{{Type: Tree, ID: emptyTree, Data: []byte{}}}},
		{name: "header sizes", objs: sizes},
		{name: "incompressible", objs: []Object{blobOf(random)}},
		{name: "notedb history", objs: noteDbBatch(tb, gittest.NoteDbShape{Changes: 12, Events: 10, Seed: 11})},
	}
}

// packDir lists objects/pack of repo.
func packDir(tb testing.TB, repo string) []string {
	tb.Helper()
	es, err := os.ReadDir(filepath.Join(repo, "objects", "pack"))
	require.NoError(tb, err)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// filesUnder lists every file and directory below dir, with the content
// of each file.
func filesUnder(tb testing.TB, dir string) map[string]string {
	tb.Helper()
	out := map[string]string{}
	require.NoError(tb, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel+"/"] = ""
			return nil
		}
		b, err := os.ReadFile(p)
		out[rel] = string(b)
		return err
	}))
	return out
}

// onlyPack returns the path of the one pack of repo without its extension,
// and checks that nothing else (no tmp_* file) is in objects/pack.
func onlyPack(tb testing.TB, repo string) string {
	tb.Helper()
	names := packDir(tb, repo)
	require.Len(tb, names, 2, "objects/pack: %v", names)
	base := strings.TrimSuffix(names[0], ".idx")
	require.Equal(tb, []string{base + ".idx", base + ".pack"}, names)
	return filepath.Join(repo, "objects", "pack", base)
}

// catBatch returns the type and raw bytes of every id as `git cat-file
// --batch` reads them from repo.
func catBatch(tb testing.TB, e *gittest.GitEnv, repo string, ids []string) map[string]Object {
	tb.Helper()
	out := []byte(e.RunInput(tb, repo, []byte(strings.Join(ids, "\n")+"\n"), "cat-file", "--batch"))
	got := map[string]Object{}
	for len(out) > 0 {
		line, rest, ok := bytes.Cut(out, []byte("\n"))
		require.True(tb, ok)
		f := strings.Fields(string(line))
		require.Len(tb, f, 3, "cat-file: %q", line)
		n, err := strconv.Atoi(f[2])
		require.NoError(tb, err)
		typ, err := ParseObjectType(f[1])
		require.NoError(tb, err)
		require.Greater(tb, len(rest), n)
		got[f[0]] = Object{Type: typ, ID: f[0], Data: rest[:n]}
		out = rest[n+1:]
	}
	return got
}

// TestWritePackReadByGit writes each batch as a pack from Go into a new
// repository: git verifies the pack, fsck --strict finds it sound, cat-file
// returns every object's bytes, and nothing but the pack and its index is
// left in objects/pack.
func TestWritePackReadByGit(t *testing.T) {
	e := gittest.Env(t)
	for _, tc := range packCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			repo := newBare(t, e)
			require.NoError(t, writePack(filepath.Join(repo, "objects"), tc.objs))
			base := onlyPack(t, repo)
			out := e.Run(t, repo, "verify-pack", "-v", base+".idx")
			require.Contains(t, out, base+".pack: ok")
			e.Run(t, repo, "fsck", "--strict")

			got := catBatch(t, e, repo, ids(tc.objs))
			require.Len(t, got, len(tc.objs))
			for _, o := range tc.objs {
				require.Equal(t, o.Type, got[o.ID].Type, o.ID)
				require.True(t, bytes.Equal(o.Data, got[o.ID].Data), "object %s differs", o.ID)
			}
			for _, info := range []string{"pack", "idx"} {
				fi, err := os.Stat(base + "." + info)
				require.NoError(t, err)
				require.Equal(t, os.FileMode(0o444), fi.Mode().Perm(), "%s mode", info)
			}
		})
	}
}

// TestIdxMatchesIndexPack checks the index written from Go against the one
// `git index-pack` writes for the same pack, byte for byte, and the pack's
// name against the one index-pack prints.
func TestIdxMatchesIndexPack(t *testing.T) {
	e := gittest.Env(t)
	for _, tc := range packCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			pack, entries, err := packOf(tc.objs)
			require.NoError(t, err)
			idx := idxOf(entries, pack[len(pack)-20:])
			dir := t.TempDir()
			packPath := filepath.Join(dir, "x.pack")
			require.NoError(t, os.WriteFile(packPath, pack, 0o644))
			name := strings.TrimSpace(e.Run(t, dir, "index-pack", "-o", filepath.Join(dir, "x.idx"), packPath))
			want, err := os.ReadFile(filepath.Join(dir, "x.idx"))
			require.NoError(t, err)
			require.Equal(t, want, idx)

			repo := newBare(t, e)
			require.NoError(t, writePack(filepath.Join(repo, "objects"), tc.objs))
			require.Equal(t, filepath.Join(repo, "objects", "pack", "pack-"+name), onlyPack(t, repo))
		})
	}
}

// TestWritePackKeepsExisting writes the same batch again: the pack and
// index already there are kept (same files), and a pack whose index is
// missing (a crash between the two names) gets its index.
func TestWritePackKeepsExisting(t *testing.T) {
	e := gittest.Env(t)
	objs := noteDbBatch(t, gittest.NoteDbShape{Changes: 3, Events: 5, Seed: 5})
	repo := newBare(t, e)
	objDir := filepath.Join(repo, "objects")
	require.NoError(t, writePack(objDir, objs))
	base := onlyPack(t, repo)
	stat := func(p string) os.FileInfo {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		return fi
	}
	pack, idx := stat(base+".pack"), stat(base+".idx")

	require.NoError(t, writePack(objDir, objs))
	require.Equal(t, base, onlyPack(t, repo))
	require.True(t, os.SameFile(pack, stat(base+".pack")), "pack replaced")
	require.True(t, os.SameFile(idx, stat(base+".idx")), "index replaced")

	require.NoError(t, os.Remove(base+".idx"))
	require.NoError(t, writePack(objDir, objs))
	require.Equal(t, base, onlyPack(t, repo))
	require.True(t, os.SameFile(pack, stat(base+".pack")), "pack replaced")
	e.Run(t, repo, "verify-pack", base+".idx")
	e.Run(t, repo, "fsck", "--strict")
}

// TestWritePackFailureLeavesNothing makes writePack fail before and after
// it created files: it returns the error and objects/pack is as before, no
// tmp_* file, no pack without its index.
func TestWritePackFailureLeavesNothing(t *testing.T) {
	e := gittest.Env(t)
	objs := noteDbBatch(t, gittest.NoteDbShape{Changes: 3, Events: 5, Seed: 6})
	errInjected := errors.New("injected link failure")
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, repo string)
	}{
		{name: "no pack directory", setup: func(t *testing.T, repo string) {
			// A file where objects/pack should be: no file can be made in
			// it, for root too.
			pack := filepath.Join(repo, "objects", "pack")
			require.NoError(t, os.RemoveAll(pack))
			require.NoError(t, os.WriteFile(pack, []byte("not a directory\n"), 0o644))
		}},
		{name: "index link fails", setup: func(t *testing.T, repo string) {
			// After both temporary files and the pack's final name exist.
			linkFile = func(from, to string) error {
				if strings.HasSuffix(to, ".idx") {
					return errInjected
				}
				return os.Link(from, to)
			}
			t.Cleanup(func() { linkFile = os.Link })
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := newBare(t, e)
			tc.setup(t, repo)
			before := filesUnder(t, filepath.Join(repo, "objects"))
			require.Error(t, writePack(filepath.Join(repo, "objects"), objs))
			require.Equal(t, before, filesUnder(t, filepath.Join(repo, "objects")))
		})
	}
}

func TestUniqueObjects(t *testing.T) {
	a, b, c := blobOf([]byte("a")), blobOf([]byte("b")), blobOf([]byte("c"))
	for _, tc := range []struct {
		name     string
		in, want []Object
	}{
		{name: "none repeated", in: []Object{a, b, c}, want: []Object{a, b, c}},
		{name: "repeat first", in: []Object{a, a, b, c}, want: []Object{a, b, c}},
		{name: "repeats", in: []Object{a, b, a, c, b, c}, want: []Object{a, b, c}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, uniqueObjects(tc.in))
		})
	}
}
