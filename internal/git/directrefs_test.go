package git

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// ListDirectRefs lists every ref that holds an object name, and leaves out
// symbolic refs, which point at another ref.
func TestListDirectRefs(t *testing.T) {
	root := newRoot(t)
	ctx := context.Background()
	_, err := root.Create(ctx, "p")
	require.NoError(t, err)
	dir, err := root.Existing("p")
	require.NoError(t, err)

	c1 := commit(t, dir, "first")
	gitOut(t, dir, "update-ref", "refs/heads/main", c1)
	gitOut(t, dir, "update-ref", "refs/changes/01/1/1", c1)
	gitOut(t, dir, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/heads/main")

	got, err := ListDirectRefs(ctx, dir)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"refs/heads/main": c1, "refs/changes/01/1/1": c1}, got)

	all, err := ListRefs(ctx, dir, "")
	require.NoError(t, err)
	require.Contains(t, all, "refs/remotes/origin/HEAD", "ListRefs still lists symbolic refs")

	empty, err := root.Create(ctx, "q")
	require.NoError(t, err)
	require.True(t, empty)
	dir, err = root.Existing("q")
	require.NoError(t, err)
	got, err = ListDirectRefs(ctx, dir)
	require.NoError(t, err)
	require.Empty(t, got)
}

// CheckComplete passes for a whole history and names what is missing.
func TestCheckComplete(t *testing.T) {
	root := newRoot(t)
	ctx := context.Background()
	_, err := root.Create(ctx, "p")
	require.NoError(t, err)
	dir, err := root.Existing("p")
	require.NoError(t, err)
	c1 := commit(t, dir, "first")
	c2 := commit(t, dir, "second", c1)
	require.NoError(t, CheckComplete(ctx, dir, []string{c2}))
	require.NoError(t, CheckComplete(ctx, dir, nil))

	// Lose the first commit's object.
	obj := filepath.Join(dir, "objects", c1[:2], c1[2:])
	require.NoError(t, os.Remove(obj))
	err = CheckComplete(ctx, dir, []string{c2})
	require.Error(t, err)
	require.Contains(t, err.Error(), c1)
	require.Error(t, CheckComplete(ctx, dir, []string{"bad"}))
}
