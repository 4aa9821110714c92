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
