package git

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"

	"github.com/sitesync/sitesync/internal/refmove"
	"github.com/sitesync/sitesync/refdb"
	"github.com/stretchr/testify/require"
)

func TestValidateName(t *testing.T) {
	good := []string{"a", "tango/core", "plugins/high-availability", "a_b-c.d", "x/y/z", "All-Users", "ünïcode"}
	for _, name := range good {
		require.NoError(t, ValidateName(name), name)
	}
	bad := []struct{ name, reason string }{
		{"", "empty"},
		{"/etc/passwd", "absolute path"},
		{"../x", "relative path segment"},
		{"a/../../x", "relative path segment"},
		{"a/./b", "relative path segment"},
		{"a//b", "empty path segment"},
		{"a/", "empty path segment"},
		{"a\x00b", "control character"},
		{"a\nb", "control character"},
		{"a\\b", "backslash"},
		{".hidden", "starts with '.'"},
		{"-upload-pack=evil", "starts with '-'"},
		{"a.git/b", "ends in .git"},
		{"x.git", "ends in .git"},
		{"c:/x", "character ':'"},
		{strings.Repeat("a", 256), "segment longer"},
		{strings.Repeat("a/", 600), "longer than 1024"},
		{"\xff", "UTF-8"},
		{"a\u0085b", "control character"},
		{"evil\u202Egpj", "invisible character U+202E"},
		{"a\u202Ab", "invisible character U+202A"},
		{"a\u2066b\u2069", "invisible character U+2066"},
		{"tango\u200B/core", "invisible character U+200B"},
		{"a\u200Fb", "invisible character U+200F"},
		{"\uFEFFtango", "invisible character U+FEFF"},
		{"tan\u00ADgo", "invisible character U+00AD"},
		{"a\U000E0041", "invisible character U+E0041"},
		{"a\u2028b", "invisible character U+2028"},
	}
	for _, tc := range bad {
		err := ValidateName(tc.name)
		require.ErrorIs(t, err, ErrBadName, tc.name)
		require.ErrorContains(t, err, tc.reason, tc.name)
	}
}

// TestNameCharactersAgree: every character the refdb refuses in a project
// name the repositories refuse too, and the other way round for the
// characters both judge (control and invisible ones): a name the API
// accepts is one the refdb stores.
func TestNameCharactersAgree(t *testing.T) {
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if r >= 0xD800 && r <= 0xDFFF { // surrogates: not in valid UTF-8
			continue
		}
		switch r {
		case '/', '\\', ':', '*', '?', '[', '~', '^', '.', '-':
			continue // rules of paths and git, not of characters
		}
		name := "a" + string(r) + "b"
		gitErr, dbErr := ValidateName(name), refdb.ValidateProject(name)
		if (gitErr == nil) != (dbErr == nil) {
			t.Fatalf("%U: git.ValidateName says %v, refdb.ValidateProject says %v", r, gitErr, dbErr)
		}
	}
}

func newRoot(tb testing.TB) Root {
	tb.Helper()
	r, err := NewRoot(tb.TempDir())
	require.NoError(tb, err)
	return r
}

func TestRootRefusesSymlinkEscape(t *testing.T) {
	root := newRoot(t)
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside, filepath.Join(root.Dir(), "evil")))
	_, err := root.Path("evil/x")
	require.ErrorIs(t, err, ErrBadName)
	require.ErrorContains(t, err, "outside the repository root")
	_, err = root.Create(context.Background(), "evil/x")
	require.ErrorIs(t, err, ErrBadName)
	entries, err := os.ReadDir(outside)
	require.NoError(t, err)
	require.Empty(t, entries, "nothing may be created outside the root")

	// A link that stays inside the root is fine.
	require.NoError(t, os.Mkdir(filepath.Join(root.Dir(), "real"), 0o755))
	require.NoError(t, os.Symlink(filepath.Join(root.Dir(), "real"), filepath.Join(root.Dir(), "alias")))
	_, err = root.Path("alias/x")
	require.NoError(t, err)
}

func TestCreateConcurrent(t *testing.T) {
	root := newRoot(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range 8 {
		wg.Go(func() {
			ok, err := root.Create(ctx, "team/project")
			require.NoError(t, err)
			if ok {
				mu.Lock()
				created++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Equal(t, 1, created, "exactly one creator wins")
	dir, err := root.Existing("team/project")
	require.NoError(t, err)
	require.Equal(t, "true\n", gitOut(t, dir, "rev-parse", "--is-bare-repository"))
	entries, err := os.ReadDir(filepath.Join(root.Dir(), "team"))
	require.NoError(t, err)
	require.Len(t, entries, 1, "no temporary directory is left behind")
	_, err = root.Existing("team/other")
	require.ErrorIs(t, err, ErrNotFound)
}

func gitOut(tb testing.TB, dir string, args ...string) string {
	tb.Helper()
	out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput()
	require.NoError(tb, err, "git %v: %s", args, out)
	return string(out)
}

// commit makes a commit with one file in the bare repository at dir.
func commit(tb testing.TB, dir, msg string, parents ...string) string {
	tb.Helper()
	cmd := exec.Command("git", "-C", dir, "hash-object", "-w", "--stdin")
	cmd.Stdin = strings.NewReader(msg + "\n")
	blob, err := cmd.Output()
	require.NoError(tb, err)
	cmd = exec.Command("git", "-C", dir, "mktree")
	cmd.Stdin = strings.NewReader("100644 blob " + strings.TrimSpace(string(blob)) + "\tfile\n")
	tree, err := cmd.Output()
	require.NoError(tb, err)
	args := []string{"commit-tree", strings.TrimSpace(string(tree)), "-m", msg}
	for _, p := range parents {
		args = append(args, "-p", p)
	}
	return strings.TrimSpace(gitOut(tb, dir, args...))
}

func TestCatFile(t *testing.T) {
	root := newRoot(t)
	ctx := context.Background()
	_, err := root.Create(ctx, "p")
	require.NoError(t, err)
	repos := NewRepos(root)
	t.Cleanup(func() { require.NoError(t, repos.Close()) })
	repo, err := repos.Open("p")
	require.NoError(t, err)

	c1 := commit(t, repo.Dir, "first")
	obj, err := repo.Objects.Object(ctx, c1)
	require.NoError(t, err)
	require.Equal(t, "commit", obj.Type)
	require.Equal(t, gitOut(t, repo.Dir, "cat-file", "commit", c1), string(obj.Data))

	_, err = repo.Objects.Object(ctx, strings.Repeat("1", 40))
	require.ErrorIs(t, err, ErrObjectMissing)

	// The same process sees objects written after it started.
	c2 := commit(t, repo.Dir, "second", c1)
	typ, size, err := repo.Objects.Info(ctx, c2)
	require.NoError(t, err)
	require.Equal(t, "commit", typ)
	require.EqualValues(t, len(gitOut(t, repo.Dir, "cat-file", "commit", c2)), size)

	_, err = repo.Objects.Object(ctx, "bad\nname")
	require.ErrorContains(t, err, "invalid object name")

	// Infos pipelines many questions, more than one chunk of them, and
	// answers each in order; a missing name is an answer.
	require.NoError(t, repo.Refs.Apply(ctx, []RefUpdate{{Ref: "refs/heads/main", Old: refmove.ZeroID, New: c2}}))
	var names []string
	for i := range 600 {
		switch i % 3 {
		case 0:
			names = append(names, c1)
		case 1:
			names = append(names, "refs/heads/main")
		default:
			names = append(names, fmt.Sprintf("%040x", i))
		}
	}
	infos, err := repo.Objects.Infos(ctx, names)
	require.NoError(t, err)
	require.Len(t, infos, len(names))
	for i, in := range infos {
		switch i % 3 {
		case 0:
			require.Equal(t, Info{ID: c1, Type: "commit", Size: int64(len(gitOut(t, repo.Dir, "cat-file", "commit", c1)))}, in)
		case 1:
			require.Equal(t, c2, in.ID, "a ref name resolves")
		default:
			require.True(t, in.Missing, "name %d", i)
		}
	}
	_, err = repo.Objects.Infos(ctx, []string{c1, "bad name"})
	require.ErrorContains(t, err, "invalid object name")

	// Long missing names come back whole: 256 of 1 KiB would fill git's
	// stdout while we still wrote its stdin, had chunks not counted bytes.
	long := make([]string, 300)
	for i := range long {
		long[i] = fmt.Sprintf("refs/changes/%04d/", i) + strings.Repeat("x", 1000)
	}
	deadline, cancelLong := context.WithTimeout(ctx, 20*time.Second)
	defer cancelLong()
	infos, err = repo.Objects.Infos(deadline, long)
	require.NoError(t, err)
	require.Len(t, infos, len(long))
	for i, in := range infos {
		require.True(t, in.Missing, "name %d", i)
	}

	// A cancelled request kills the process; the next one starts a new one.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = repo.Objects.Object(cancelled, c1)
	require.ErrorIs(t, err, context.Canceled)
	_, err = repo.Objects.Object(ctx, c1)
	require.NoError(t, err)
}

func TestRefTransactions(t *testing.T) {
	root := newRoot(t)
	ctx := context.Background()
	_, err := root.Create(ctx, "p")
	require.NoError(t, err)
	repos := NewRepos(root)
	t.Cleanup(func() { require.NoError(t, repos.Close()) })
	repo, err := repos.Open("p")
	require.NoError(t, err)
	c1 := commit(t, repo.Dir, "one")
	c2 := commit(t, repo.Dir, "two", c1)

	require.NoError(t, repo.Refs.Apply(ctx, []RefUpdate{
		{Ref: "refs/heads/main", Old: refmove.ZeroID, New: c1},
		{Ref: "refs/heads/dev", Old: refmove.ZeroID, New: c1},
	}))
	refs, err := ListRefs(ctx, repo.Dir, "")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"refs/heads/main": c1, "refs/heads/dev": c1}, refs)

	// A batch with one stale old value changes nothing, and says which ref.
	err = repo.Refs.Apply(ctx, []RefUpdate{
		{Ref: "refs/heads/main", Old: c1, New: c2},
		{Ref: "refs/heads/dev", Old: c2, New: c1},
	})
	require.ErrorContains(t, err, "refs/heads/dev")
	refs, err = ListRefs(ctx, repo.Dir, "")
	require.NoError(t, err)
	require.Equal(t, c1, refs["refs/heads/main"], "a failed batch moves no ref")

	// The updater restarts after a failure; prepare holds the lock until
	// abort, and a second writer through C git sees it.
	tx, err := repo.Refs.Prepare(ctx, []RefUpdate{{Ref: "refs/heads/main", Old: c1, New: c2}})
	require.NoError(t, err)
	out, err := exec.Command("git", "-C", repo.Dir, "update-ref", "refs/heads/main", c2).CombinedOutput()
	require.Error(t, err, "the ref is locked while prepared")
	require.Contains(t, string(out), "lock")
	require.NoError(t, tx.Abort(ctx))
	require.Error(t, tx.Commit(ctx), "a transaction finishes once")

	tx, err = repo.Refs.Prepare(ctx, []RefUpdate{{Ref: "refs/heads/main", Old: c1, New: c2}, {Ref: "refs/heads/dev", Old: c1, New: refmove.ZeroID}})
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
	refs, err = ListRefs(ctx, repo.Dir, "refs/heads/")
	require.NoError(t, err)
	require.Equal(t, map[string]string{"refs/heads/main": c2}, refs)

	// A stale old value: the fast path says so as git would, git's own
	// failure is an *Error.
	err = repo.Refs.Apply(ctx, []RefUpdate{{Ref: "refs/heads/main", Old: c1, New: c1}})
	require.ErrorIs(t, err, ErrStaleRef)
	require.ErrorContains(t, err, "cannot lock ref 'refs/heads/main': is at "+c2+" but expected "+c1)
	slow := NewRefUpdater(repo.Dir)
	t.Cleanup(func() { require.NoError(t, slow.Close()) })
	var gitErr *Error
	err = slow.Apply(ctx, []RefUpdate{{Ref: "refs/heads/main", Old: c1, New: c1}})
	require.True(t, errors.As(err, &gitErr), "a git failure is an *Error: %v", err)
	require.Contains(t, gitErr.Stderr, "expected "+c1)

	require.ErrorContains(t, repo.Refs.Apply(ctx, []RefUpdate{{Ref: "HEAD", New: c1}}), "invalid ref name")
	require.ErrorContains(t, repo.Refs.Apply(ctx, []RefUpdate{{Ref: "refs/heads/x", New: "abc"}}), "invalid object id")
}

func TestPackRoundTrip(t *testing.T) {
	root := newRoot(t)
	ctx := context.Background()
	for _, p := range []string{"src", "dst"} {
		_, err := root.Create(ctx, p)
		require.NoError(t, err)
	}
	src, _ := root.Existing("src")
	dst, _ := root.Existing("dst")
	c1 := commit(t, src, "one")
	c2 := commit(t, src, "two", c1)

	// Full pack into a quarantine: the repository itself gains nothing until
	// the quarantine is moved in.
	quarantine := t.TempDir()
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(PackObjects(ctx, src, []string{c2}, nil, pw)) }()
	hash, err := IndexPack(ctx, dst, pr, IndexPackOptions{ObjectDir: quarantine})
	require.NoError(t, err)
	require.Len(t, hash, 40)
	_, err = exec.Command("git", "-C", dst, "cat-file", "-e", c2).CombinedOutput()
	require.Error(t, err, "objects stay in the quarantine")
	packs, _ := filepath.Glob(filepath.Join(quarantine, "pack", "*.pack"))
	require.Len(t, packs, 1)

	// A corrupt pack is refused with git's message.
	_, err = IndexPack(ctx, dst, strings.NewReader("PACK\x00\x00\x00\x02garbage"), IndexPackOptions{})
	var gitErr *Error
	require.ErrorAs(t, err, &gitErr)
	require.NotEmpty(t, gitErr.Stderr)
}
