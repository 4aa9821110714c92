package journal

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestJournal(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	j, err := Open(dir)
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e1 := Entry{Txn: "t1", Project: "tango/core", Origin: "a", Prepared: t0.Add(time.Second), Deadline: t0.Add(time.Minute),
		Updates: []Update{{Ref: "refs/heads/main", Old: "0000000000000000000000000000000000000000", New: "1111111111111111111111111111111111111111"}}}
	e2 := Entry{Txn: "t2", Project: "p", Origin: "b", Prepared: t0}
	require.NoError(t, j.Put(e1))
	require.NoError(t, j.Put(e2))

	// A fresh Journal over the same directory (a restart) sees both.
	j2, err := Open(dir)
	require.NoError(t, err)
	all, err := j2.List()
	require.NoError(t, err)
	require.Equal(t, []Entry{e2, e1}, all, "oldest prepare first")
	got, err := j2.Get("t1")
	require.NoError(t, err)
	require.Equal(t, e1, got)

	require.NoError(t, j2.Remove("t2"))
	require.NoError(t, j2.Remove("t2"), "removing twice is fine")
	_, err = j2.Get("t2")
	require.ErrorIs(t, err, os.ErrNotExist)

	// A damaged entry is reported, not dropped; the others are still listed.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t3.json"), []byte("{trunc"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t4.json"), []byte(`{"txn":"other"}`), 0o644))
	all, err = j2.List()
	require.ErrorContains(t, err, "t3.json")
	require.ErrorContains(t, err, `t4.json names transaction "other"`)
	require.Equal(t, []Entry{e1}, all)

	for _, bad := range []string{"", "../x", "a/b", "a.json", "x y"} {
		require.ErrorContains(t, j.Put(Entry{Txn: bad}), "invalid transaction id")
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	require.Empty(t, leftovers, "no temporary files are left behind")
}

// The copy a journal keeps of what it wrote answers Get like the file
// does, and is nobody else's to change.
func TestJournalKeepsWhatItWrote(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "journal")
	j, err := Open(dir)
	require.NoError(t, err)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	e := Entry{Txn: "t1", Project: "p", Origin: "a", Prepared: t0, Deadline: t0.Add(time.Minute), Peers: []string{"b", "c"},
		Updates: []Update{{Ref: "refs/changes/01/1/meta", Old: "1111111111111111111111111111111111111111", New: "2222222222222222222222222222222222222222"}}}
	require.NoError(t, j.PutVolatile(e))
	want := clone(e)
	e.Updates[0].New, e.Peers[0] = "changed by the caller", "x"

	got, err := j.Get("t1")
	require.NoError(t, err)
	require.Equal(t, want, got, "the caller's later changes do not reach the journal")
	got.Updates[0].Ref, got.Peers[1] = "changed by a reader", "y"
	again, err := j.Get("t1")
	require.NoError(t, err)
	require.Equal(t, want, again, "nor do a reader's")

	fromDisk, err := Open(dir)
	require.NoError(t, err)
	onDisk, err := fromDisk.Get("t1")
	require.NoError(t, err)
	require.Equal(t, want, onDisk, "the file holds what the copy does")

	want.Peers = []string{"c"}
	require.NoError(t, j.Put(want))
	got, err = j.Get("t1")
	require.NoError(t, err)
	require.Equal(t, []string{"c"}, got.Peers, "a Put replaces the copy")

	require.NoError(t, j.Remove("t1"))
	_, err = j.Get("t1")
	require.ErrorIs(t, err, os.ErrNotExist)
	_, err = fromDisk.Get("t1")
	require.ErrorIs(t, err, os.ErrNotExist)
}
