package git

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/stretchr/testify/require"
)

// CheckRefUpdates says what git would refuse, and changes nothing either
// way: no ref moves, no lock stays.
func TestCheckRefUpdates(t *testing.T) {
	ctx := context.Background()
	dir, commit, blob := checkRepo(t)
	for _, tc := range []struct {
		name string
		ups  []RefUpdate
		want string
	}{
		{name: "a new branch", ups: []RefUpdate{{Ref: "refs/heads/new", Old: refmove.ZeroID, New: commit}}},
		{name: "a branch to a blob", ups: []RefUpdate{{Ref: "refs/heads/new", Old: refmove.ZeroID, New: blob}}, want: "non-commit object"},
		{name: "a ref below an existing ref", ups: []RefUpdate{{Ref: "refs/heads/main/x", Old: refmove.ZeroID, New: commit}}, want: "refs/heads/main"},
		{name: "a ref above existing refs", ups: []RefUpdate{{Ref: "refs/heads/dir", Old: refmove.ZeroID, New: commit}}, want: "refs/heads/dir"},
		{name: "a stale old value", ups: []RefUpdate{{Ref: "refs/heads/main", Old: blob, New: commit}}, want: "refs/heads/main"},
		{name: "a tag to a blob", ups: []RefUpdate{{Ref: "refs/tags/b", Old: refmove.ZeroID, New: blob}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := gitRefs(t, dir)
			err := CheckRefUpdates(ctx, dir, nil, tc.ups)
			if tc.want == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tc.want)
			}
			require.Equal(t, before, gitRefs(t, dir), "a check moved a ref")
			locks, _ := filepath.Glob(filepath.Join(dir, "refs", "heads", "*.lock"))
			require.Empty(t, locks)
		})
	}
}

// checkRepo is a bare repository with refs/heads/main and
// refs/heads/dir/one at a commit, and a blob.
func checkRepo(t *testing.T) (dir, commit, blob string) {
	t.Helper()
	dir = t.TempDir()
	mustGit(t, dir, "init", "-q", "--bare")
	blob = strings.TrimSpace(mustGitIn(t, dir, "blob\n", "hash-object", "-w", "--stdin"))
	tree := strings.TrimSpace(mustGitIn(t, dir, "100644 blob "+blob+"\tf\n", "mktree"))
	commit = strings.TrimSpace(mustGitIn(t, dir, "", "-c", "user.name=t", "-c", "user.email=t@t", "commit-tree", tree, "-m", "c"))
	mustGit(t, dir, "update-ref", "refs/heads/main", commit)
	mustGit(t, dir, "update-ref", "refs/heads/dir/one", commit)
	return dir, commit, blob
}

func mustGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	return mustGitIn(t, dir, "", args...)
}

func mustGitIn(t *testing.T, dir, stdin string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), dir, nil, strings.NewReader(stdin), &out, args...))
	return out.String()
}

func gitRefs(t *testing.T, dir string) string {
	t.Helper()
	return mustGit(t, dir, "for-each-ref", "--format=%(objectname) %(refname)")
}
