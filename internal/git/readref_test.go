package git

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sitesync/sitesync/internal/refmove"
)

// TestRefValue: RefValue reads a ref by its exact name. What cat-file would
// make of the name as a revision — another ref git's rules expand it to, a
// commit a describe-like name abbreviates — does not answer for a ref that
// does not exist.
func TestRefValue(t *testing.T) {
	root := newRoot(t)
	ctx := context.Background()
	_, err := root.Create(ctx, "p")
	require.NoError(t, err)
	repos := NewRepos(root)
	t.Cleanup(func() { require.NoError(t, repos.Close()) })
	repo, err := repos.Open("p")
	require.NoError(t, err)

	c1 := commit(t, repo.Dir, "first")
	c2 := commit(t, repo.Dir, "second", c1)
	gitOut(t, repo.Dir, "update-ref", "refs/heads/main", c2)
	gitOut(t, repo.Dir, "update-ref", "refs/heads/refs/heads/ghost", c1)
	gitOut(t, repo.Dir, "update-ref", "refs/tags/refs/heads/phantom", c1)
	gitOut(t, repo.Dir, "update-ref", "refs/heads/v1-g"+c1[:10], c2) // a describe-like name that exists
	gitOut(t, repo.Dir, "tag", "-a", "-m", "v1", "v1", c1)
	tag := gitOut(t, repo.Dir, "rev-parse", "refs/tags/v1")
	gitOut(t, repo.Dir, "symbolic-ref", "refs/remotes/origin/HEAD", "refs/heads/main")

	for _, tc := range []struct {
		name string
		ref  string
		want string
	}{
		{"branch", "refs/heads/main", c2},
		{"absent", "refs/heads/nope", refmove.ZeroID},
		{"annotated tag: the tag object", "refs/tags/v1", tag[:40]},
		{"symbolic ref: its target's value", "refs/remotes/origin/HEAD", c2},
		{"absent, but refs/heads/<it> exists", "refs/heads/ghost", refmove.ZeroID},
		{"absent, but refs/tags/<it> exists", "refs/heads/phantom", refmove.ZeroID},
		{"absent describe-like name", "refs/heads/x-g" + c1[:10], refmove.ZeroID},
		{"existing describe-like name", "refs/heads/v1-g" + c1[:10], c2},
		{"the expanded name itself", "refs/heads/refs/heads/ghost", c1},
		{"a directory of refs", "refs/heads", refmove.ZeroID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := repo.Objects.RefValue(ctx, tc.ref)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	_, err = repo.Objects.RefValue(ctx, "main~1")
	require.ErrorContains(t, err, "not a full ref name")
}
