package notedbfast

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/testkit/gittest"
)

func toUpdates(w gittest.NoteDbWrite) []Update {
	var us []Update
	for _, u := range w.Updates {
		us = append(us, Update{Ref: u.Ref, Old: u.Old, New: u.New})
	}
	return us
}

func toObjects(tb testing.TB, w gittest.NoteDbWrite) []Object {
	tb.Helper()
	var os []Object
	for _, o := range w.Objects {
		t, err := ParseObjectType(o.Type)
		require.NoError(tb, err)
		os = append(os, Object{Type: t, ID: o.ID, Data: o.Data})
	}
	return os
}

// genDeltas returns the NoteDb-only writes of a generated history as deltas.
func genDeltas(tb testing.TB, s gittest.NoteDbShape) []Delta {
	tb.Helper()
	ds, _ := genHistory(tb, s)
	return ds
}

// genHistory returns the NoteDb-only writes of a generated history as
// deltas, and the objects of the other writes (which go as packs).
func genHistory(tb testing.TB, s gittest.NoteDbShape) ([]Delta, []gittest.GitObject) {
	tb.Helper()
	var ds []Delta
	var other []gittest.GitObject
	for i, w := range gittest.NoteDbWrites(s) {
		if !w.NoteDbOnly() {
			other = append(other, w.Objects...)
			continue
		}
		ds = append(ds, Delta{Project: "plugins/example", Txn: "txn-" + strings.Repeat("0", 4) + string(rune('a'+i%26)),
			Objects: toObjects(tb, w), Updates: toUpdates(w)})
	}
	return ds, other
}

func newBare(tb testing.TB, e *gittest.GitEnv) string {
	tb.Helper()
	dir := filepath.Join(tb.TempDir(), "peer.git")
	e.Run(tb, "", "init", "--quiet", "--bare", "--initial-branch=master", dir)
	return dir
}

// listing is every path under objects/ with its size and mode, to show that
// a refused delta left the repository byte-identical.
func listing(tb testing.TB, repo string) []string {
	tb.Helper()
	var out []string
	root := filepath.Join(repo, "objects")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := rel + " " + info.Mode().String()
		if !d.IsDir() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += fmt.Sprintf(" %d %s", len(b), Hash(Blob, b))
		}
		out = append(out, line)
		return nil
	})
	require.NoError(tb, err)
	sort.Strings(out)
	return out
}

// moveRefs moves the refs of updates at repo with git update-ref, as the
// caller of an Applier does after Apply succeeded.
func moveRefs(tb testing.TB, e *gittest.GitEnv, repo string, us []Update) {
	tb.Helper()
	var in strings.Builder
	in.WriteString("start\n")
	for _, u := range us {
		in.WriteString("update " + u.Ref + " " + u.New + " " + u.Old + "\n")
	}
	in.WriteString("commit\n")
	e.RunInput(tb, repo, []byte(in.String()), "update-ref", "--stdin")
}

func ctxT(tb testing.TB) context.Context {
	tb.Helper()
	return tb.Context()
}
